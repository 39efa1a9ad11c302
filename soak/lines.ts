/** What a soak receiver reports, one JSON object per line. `t` is wall-clock ms. */
export type SoakLine =
  | { e: 'chunk'; s: string; q: number; p: string; t: number }
  | { e: 'gap'; s: string; from: number; to: number; reason: string; t: number }
  | { e: 'reset'; s: string; t: number }
  | { e: 'error'; code: string; t: number }
  | { e: 'ready'; t: number };
