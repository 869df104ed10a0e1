/**
 * Chart colours from JupyterLab's CSS variables, read again when the theme changes, so that
 * canvas drawings (which cannot use CSS variables) follow light and dark themes.
 */
import * as React from 'react';

export interface IChartTheme {
  /** Axis labels and ticks. */
  text: string;
  grid: string;
  /** Series colours, in order. */
  palette: string[];
  font: string;
  /** Changes whenever the theme does: charts rebuild on it. */
  key: string;
}

const PALETTE_VARS = [
  '--jp-brand-color1',
  '--jp-warn-color1',
  '--jp-success-color1',
  '--jp-error-color1',
  '--jp-accent-color1',
  '--jp-brand-color3',
  '--jp-warn-color3',
  '--jp-success-color3'
];
/** The CSS colour of palette entry `i` (swatches in tables beside the canvas lines). */
export function paletteCss(i: number): string {
  return `var(${PALETTE_VARS[i % PALETTE_VARS.length]})`;
}

const FALLBACK = ['#1976d2', '#f57c00', '#388e3c', '#d32f2f', '#00897b'];

function read(
  style: CSSStyleDeclaration,
  name: string,
  fallback: string
): string {
  return style.getPropertyValue(name).trim() || fallback;
}

/**
 * A font-size variable in whole pixels: canvas fonts need px (JupyterLab's sizes are in em), and
 * uPlot reads the size as an integer.
 */
function fontPx(variable: string): number {
  const probe = document.createElement('span');
  probe.style.fontSize = `var(${variable})`;
  document.body.appendChild(probe);
  const px = parseFloat(getComputedStyle(probe).fontSize);
  probe.remove();
  return Number.isFinite(px) && px > 0 ? Math.round(px) : 11;
}

export function readTheme(): IChartTheme {
  const style = getComputedStyle(document.body);
  const palette = PALETTE_VARS.map((name, i) =>
    read(style, name, FALLBACK[i % FALLBACK.length])
  );
  const text = read(style, '--jp-ui-font-color1', '#333');
  const grid = read(style, '--jp-border-color2', '#e0e0e0');
  const family = read(style, '--jp-ui-font-family', 'sans-serif');
  return {
    text,
    grid,
    palette,
    font: `${fontPx('--jp-ui-font-size0')}px ${family}`,
    key: [text, grid, ...palette].join('|')
  };
}

/** The current chart theme; re-read when JupyterLab switches theme (body attributes change). */
export function useChartTheme(): IChartTheme {
  const [theme, setTheme] = React.useState(readTheme);
  React.useEffect(() => {
    const observer = new MutationObserver(() => {
      const next = readTheme();
      setTheme(current => (current.key === next.key ? current : next));
    });
    observer.observe(document.body, {
      attributes: true,
      attributeFilter: [
        'data-jp-theme-name',
        'data-jp-theme-light',
        'class',
        'style'
      ]
    });
    return () => observer.disconnect();
  }, []);
  return theme;
}

/** A colour with transparency, for the min/max bands. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
  if (hex) {
    let h = hex[1];
    if (h.length === 3) {
      h = h
        .split('')
        .map(c => c + c)
        .join('');
    }
    const n = parseInt(h, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(color);
  if (rgb) {
    const [r, g, b] = rgb[1].split(/[\s,/]+/);
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  return color;
}
