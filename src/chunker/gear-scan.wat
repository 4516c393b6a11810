;; The FastCDC gear-hash scan of docs/format.md, section 8, as WebAssembly: V8 runs this loop ~2.5x
;; faster than the same loop in JavaScript (bounds and type checks vanish). Built into
;; gear-scan-wasm.ts by scripts/build-wasm.mjs; the JavaScript reference scan in
;; test/chunker/gear-scan.test.ts checks that both cut at the same places.
;;
;; Runs of one byte are not scanned byte by byte. With h' = (h << 1) + g (mod 2^32), h = -g is a
;; fixed point of the byte whose gear value is g: once the hash equals -g after that byte, it stays
;; -g for as long as the byte repeats (after 32 equal bytes it always gets there, whatever came
;; before). So when h + g = 0, the scan jumps to the end of the run eight bytes at a time and decides
;; the cut of the whole run at once: none where the mask in force does not match -g, else the first
;; position of the run where the matching mask is in force. The cuts are exactly those of the
;; byte-by-byte loop. The loops go 8 bytes per turn (a cut is checked after every byte, the fixed
;; point once per turn: a run is noticed at most 8 bytes late, and the check costs almost
;; nothing on bytes that are not runs).
;;
;; Memory layout (the memory is imported, so job slots can live in it and be scanned in place):
;;   [0, 1024)  the 256-entry gear table, little-endian u32 (written by the caller)
;;   the bytes to scan anywhere above it
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; The first address in [q, end) whose byte is not b, or `end`.
  (func $runEnd (param $q i32) (param $b i32) (param $end i32) (result i32)
    (local $pattern i64)
    (local.set $pattern (i64.mul (i64.extend_i32_u (local.get $b)) (i64.const 0x0101010101010101)))
    (block $wide_done
      (loop $wide
        (br_if $wide_done (i32.gt_u (i32.add (local.get $q) (i32.const 8)) (local.get $end)))
        (br_if $wide_done (i64.ne (i64.load (local.get $q)) (local.get $pattern)))
        (local.set $q (i32.add (local.get $q) (i32.const 8)))
        (br $wide)))
    (block $narrow_done
      (loop $narrow
        (br_if $narrow_done (i32.ge_u (local.get $q) (local.get $end)))
        (br_if $narrow_done (i32.ne (i32.load8_u (local.get $q)) (local.get $b)))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br $narrow)))
    (local.get $q))

  ;; scan(p, center, end, maskS, maskL) -> the address just past the cut, or `end` when there is none.
  ;; The hash starts at 0 at address p (the chunk start + min); below `center` (start + avg) a cut
  ;; needs (h & maskS) == 0, from there on (h & maskL) == 0: normalized chunking.
  (func (export "scan") (param $p i32) (param $center i32) (param $end i32) (param $maskS i32) (param $maskL i32) (result i32)
    (local $h i32)
    (local $g i32)
    (local $b i32)
    (local $r i32)
    ;; Below center, 8 bytes per turn.
    (block $small_done
      (loop $small
        (br_if $small_done (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $center)))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=0 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 1)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=1 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 2)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=2 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 3)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=3 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 4)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=4 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 5)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=5 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 6)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=6 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 7)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=7 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (i32.add (local.get $p) (i32.const 8)))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        ;; h = -g: the hash stays put while the last byte repeats (no cut there: maskS did not match).
        (br_if $small (i32.add (local.get $h) (local.get $g)))
        (local.set $b (i32.load8_u offset=0 (i32.sub (local.get $p) (i32.const 1))))
        (local.set $r (call $runEnd (local.get $p) (local.get $b) (local.get $end)))
        (if (i32.gt_u (local.get $r) (local.get $center))
          (then
            ;; The run covers `center`: the first position checked with maskL is center + 1.
            (if (i32.eqz (i32.and (local.get $h) (local.get $maskL)))
              (then (return (i32.add (local.get $center) (i32.const 1)))))))
        (local.set $p (local.get $r))
        (br $small)))
    ;; The last bytes below center, one at a time.
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $p) (local.get $center)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
                               (i32.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (local.get $p))))
        (br $tail)))
    ;; From center on, 8 bytes per turn.
    (block $large_done
      (loop $large
        (br_if $large_done (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $end)))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=0 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 1)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=1 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 2)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=2 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 3)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=3 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 4)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=4 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 5)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=5 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 6)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=6 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 7)))))
          (local.set $g (i32.load (i32.shl (i32.load8_u offset=7 (local.get $p)) (i32.const 2))))
          (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (local.get $g)))
          (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (i32.add (local.get $p) (i32.const 8)))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        ;; h = -g and no cut: none for the rest of the run either.
        (br_if $large (i32.add (local.get $h) (local.get $g)))
        (local.set $p (call $runEnd (local.get $p) (i32.load8_u offset=0 (i32.sub (local.get $p) (i32.const 1))) (local.get $end)))
        (br $large)))
    (block $end_done
      (loop $end_loop
        (br_if $end_done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
                               (i32.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (local.get $p))))
        (br $end_loop)))
    (local.get $end))
)
