/**
 * The template renderer used to check the Helm chart (./helm-template.ts) against behaviour of
 * `helm template` that the chart relies on: whitespace trimming, float64 values, scoping, strictness.
 */
import { describe, expect, it } from 'vitest';
import { Chart, formatGoFloat, toYaml } from './helm-template.js';

const ctx = (Values: Record<string, unknown> = {}) => ({
  Values,
  Release: { Name: 'rel', Namespace: 'ns', Service: 'Helm', IsInstall: true, IsUpgrade: false },
  Chart: { Name: 'hexz', Version: '0.1.0', AppVersion: '0.1.0' },
});

function render(src: string, values: Record<string, unknown> = {}, helpers = ''): string {
  return new Chart({ '_helpers.tpl': helpers, 't.yaml': src }).render(ctx(values))['t.yaml'];
}

describe('helm template renderer', () => {
  it.each([
    ['a  {{- "b" -}}  c', 'abc'],
    ['a\n  {{- "b" }}\n', 'ab\n'],
    ['{{/* a comment */}}x', 'x'],
    ['x\n{{- /* trimmed comment */ -}}\ny', 'xy'],
    ['{{ if true }}yes{{ else }}no{{ end }}', 'yes'],
    ['{{ if false }}a{{ else if true }}b{{ else }}c{{ end }}', 'b'],
    ['{{ with "" }}a{{ else }}b{{ end }}', 'b'],
    ['{{ range $i, $v := list "a" "b" }}{{ $i }}={{ $v }};{{ end }}', '0=a;1=b;'],
    ['{{ range $k, $v := dict "b" 2 "a" 1 }}{{ $k }}={{ $v }};{{ end }}', 'a=1;b=2;'],
    ['{{ range list }}x{{ else }}empty{{ end }}', 'empty'],
    ['{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}', '2'],
    ['{{ or "" "x" }}|{{ and "a" "" }}|{{ and "a" "b" }}', 'x||b'],
    ['{{ default "d" "" }}|{{ default "d" "v" }}', 'd|v'],
    ['{{ "a" | quote }}|{{ quote nil }}|{{ 8080 | quote }}', '"a"||"8080"'],
    ['{{ "line1\\nline2" | nindent 2 }}', '\n  line1\n  line2'],
    ['{{ printf "%s-%s" "a" "b" | trunc 3 | trimSuffix "-" }}', 'a-b'],
    ['{{ replace "/" "__" "team-a/ds" }}', 'team-a__ds'],
    ['{{ ternary "1" "0" true }}{{ ternary "1" "0" false }}', '10'],
    ['{{ kindIs "invalid" nil }} {{ kindIs "bool" false }} {{ kindIs "string" "" }}', 'true true true'],
    ['{{ gt (int 3.0) 1 }}', 'true'],
    ['{{ join "," (list "a" "b") }}', 'a,b'],
  ])('%j → %j', (src, out) => {
    expect(render(src)).toBe(out);
  });

  it('treats values as float64 like Helm: large numbers print as 1e+06 unless converted with int', () => {
    const v = { small: 100000, big: 1000000, frac: 1.5, tiny: 0.00001 };
    expect(render('{{ .Values.small }} {{ .Values.big }} {{ .Values.big | int }} {{ .Values.frac }} {{ .Values.tiny }}', v)).toBe('100000 1e+06 1000000 1.5 1e-05');
    expect(formatGoFloat(123456789)).toBe('1.23456789e+08');
    expect(formatGoFloat(-2500000)).toBe('-2.5e+06');
    expect(formatGoFloat(30000)).toBe('30000');
  });

  it('toYaml sorts keys and drops the final newline; include passes its argument as the dot', () => {
    expect(toYaml({ b: 1, a: { d: [1, 2], c: 'x' } })).toBe('a:\n  c: x\n  d:\n    - 1\n    - 2\nb: 1');
    const helpers = '{{- define "greet" -}}hello {{ .name }}{{- end }}';
    expect(render('{{ include "greet" (dict "name" "you") }}', {}, helpers)).toBe('hello you');
    expect(render('{{ range list 1 2 }}{{ $.Values.x }}{{ end }}', { x: 'y' })).toBe('yy');
  });

  it('fails where Helm fails', () => {
    expect(() => render('{{ .Values.missing.field }}')).toThrow(/nil pointer evaluating \.Values\.missing\.field/);
    expect(() => render('{{ "x" | nindent .Values.n }}', { n: 4 })).toThrow(/expected int; got float64/);
    expect(() => render('{{ hasPrefix "s3://" .Values.none }}')).toThrow(/expected string; got invalid/);
    expect(() => render('{{ eq .Values.n 1 }}', { n: 1 })).toThrow(/incompatible types/);
    expect(() => render('{{ .Values.m }}', { m: { a: 1 } })).toThrow(/printing a map/);
    expect(() => render('{{ tpl "x" . }}')).toThrow(/function "tpl" not defined/);
    expect(() => render('{{ fail "no" }}')).toThrow(/execution error: no/);
    expect(() => render('{{ required "need x" .Values.x }}')).toThrow(/need x/);
    expect(() => render('{{ if true }}x')).toThrow(/missing \{\{ end \}\}/);
    expect(() => render('{{ include "nope" . }}')).toThrow(/no template "nope"/);
  });
});
