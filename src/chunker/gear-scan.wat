;; The FastCDC gear-hash scan of docs/format.md, section 8, as WebAssembly: V8 runs this loop ~2.5x
;; faster than the same loop in JavaScript (bounds and type checks vanish). Built into
;; gear-scan-wasm.ts by scripts/build-wasm.mjs; the JavaScript reference scan in
;; test/chunker/fastcdc.test.ts checks that both cut at the same places.
;;
;; Memory layout (the memory is imported, so job slots can live in it and be scanned in place):
;;   [0, 1024)  the 256-entry gear table, little-endian u32 (written by the caller)
;;   the bytes to scan anywhere above it
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; scan(p, center, end, maskS, maskL) -> the address just past the cut, or `end` when there is none.
  ;; The hash starts at 0 at address p (the chunk start + min); below `center` (start + avg) a cut
  ;; needs (h & maskS) == 0, from there on (h & maskL) == 0: normalized chunking.
  (func (export "scan") (param $p i32) (param $center i32) (param $end i32) (param $maskS i32) (param $maskL i32) (result i32)
    (local $h i32)
    (block $small_done
      (loop $small
        (br_if $small_done (i32.ge_u (local.get $p) (local.get $center)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
                               (i32.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (local.get $p))))
        (br $small)))
    (block $large_done
      (loop $large
        (br_if $large_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
                               (i32.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (local.get $p))))
        (br $large)))
    (local.get $end))
)
