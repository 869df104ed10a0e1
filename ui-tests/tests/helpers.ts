/** Shared steps of the runs UI specs: the test store, the sidebar, rows, notebooks. */
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const SIDEBAR_ID = 'jupyter-mlp-sidebar';
export const UI_TESTS = path.resolve(__dirname, '..');
export const REPO = path.resolve(UI_TESTS, '..');
/** The store of the test server (see jupyter_server_test_config.py). */
export const MLP_HOME =
  process.env.MLP_UI_HOME || path.join(UI_TESTS, '.mlp-home');
export const RESULTS = path.join(UI_TESTS, 'test-results');
/** The pipeline editor's document widget factory. */
export const PIPELINE_FACTORY = 'jupyter-mlp Pipeline Editor';

/** Run ui-tests/mlp_store.py (clear / runs / bulk N) against the test server's store. */
export function store(...args: string[]): string {
  return execFileSync(
    process.env.MLP_PYTHON || 'python',
    [path.join(UI_TESTS, 'mlp_store.py'), ...args],
    {
      env: { ...process.env, MLP_HOME },
      encoding: 'utf-8',
      timeout: 60_000
    }
  );
}

/** Seed the four runs of project "ui"; returns their ids by name. */
export function seedRuns(): Record<string, string> {
  return JSON.parse(store('runs')) as Record<string, string>;
}

export async function openSidebar(
  page: IJupyterLabPageFixture
): Promise<Locator> {
  const tab = page.locator(`.jp-SideBar [data-id="${SIDEBAR_ID}"]`);
  await expect(tab).toHaveAttribute('title', 'jupyter-mlp runs');
  // A restored layout may have it open already: a click would close it.
  if (!/lm-mod-current/.test((await tab.getAttribute('class')) ?? '')) {
    await tab.click();
  }
  const panel = page.locator(`#${SIDEBAR_ID}`);
  await expect(panel.getByRole('heading', { name: 'Runs' })).toBeInViewport();
  return panel;
}

/** The row of the run named `name` (exactly). */
export function runRow(panel: Locator, name: string): Locator {
  return panel.locator('.jp-mlp-RunTable-row').filter({
    has: panel
      .page()
      .locator('.jp-mlp-RunTable-name')
      .getByText(name, { exact: true })
  });
}

/** The names of the rows shown, top to bottom. */
export async function rowNames(panel: Locator): Promise<string[]> {
  return panel
    .locator('.jp-mlp-RunTable-row .jp-mlp-RunTable-name')
    .allInnerTexts();
}

/** Widen the left sidebar by dragging its edge (screenshots show more columns). */
export async function widenSidebar(page: Page, by = 220): Promise<void> {
  const handle = page
    .locator('#jp-main-split-panel > .lm-SplitPanel-handle')
    .first();
  const box = await handle.boundingBox();
  if (!box) {
    return;
  }
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + by, y, { steps: 5 });
  await page.mouse.up();
  // The table picks its columns for the new width: wait until they fit.
  const table = page.locator('.jp-mlp-RunTable');
  if (await table.count()) {
    await expect
      .poll(() => table.evaluate(node => node.scrollWidth <= node.clientWidth))
      .toBe(true);
  }
}

/** A PNG for the README, in docs/ at the repository root. */
export function docsPath(name: string): string {
  const dir = path.join(REPO, 'docs');
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}

/** How many pixels of a canvas differ from its first pixel (a blank canvas has none). */
export async function drawnPixels(canvas: Locator): Promise<number> {
  return canvas.evaluate((node: HTMLCanvasElement) => {
    const ctx = node.getContext('2d');
    if (!ctx || !node.width || !node.height) {
      return 0;
    }
    const { data } = ctx.getImageData(0, 0, node.width, node.height);
    let n = 0;
    for (let i = 4; i < data.length; i += 4) {
      if (
        data[i] !== data[0] ||
        data[i + 1] !== data[1] ||
        data[i + 2] !== data[2] ||
        data[i + 3] !== data[3]
      ) {
        n++;
      }
    }
    return n;
  });
}

/** A code cell of a notebook file (nbformat 4.5). */
export function codeCell(source: string, tags: string[] = []) {
  return {
    cell_type: 'code',
    execution_count: null,
    id: Math.random().toString(16).slice(2, 10),
    metadata: tags.length ? { tags } : {},
    outputs: [],
    source
  };
}

export function notebookJson(cells: ReturnType<typeof codeCell>[]): string {
  return JSON.stringify({
    cells,
    metadata: {
      kernelspec: {
        display_name: 'Python 3',
        language: 'python',
        name: 'python3'
      },
      language_info: { name: 'python' }
    },
    nbformat: 4,
    nbformat_minor: 5
  });
}

/** WCAG 2 contrast of an element's text against the background it is drawn on. */
export async function contrast(locator: Locator): Promise<number> {
  return locator.evaluate((node: Element) => {
    const parse = (c: string): number[] | null => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) {
        return null;
      }
      const parts = m[1]
        .split(/[ ,/]+/)
        .filter(Boolean)
        .map(Number);
      return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
    };
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const fg = parse(getComputedStyle(node).color)!;
    let bg: number[] | null = null;
    for (let el: Element | null = node; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c && c[3] > 0.5) {
        bg = c;
        break;
      }
    }
    bg = bg ?? [255, 255, 255, 1];
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  });
}

/**
 * A pipeline stage lies wholly on its canvas: inside the canvas and the page, clear of the
 * minimap. Geometry with half a pixel of slack, since Playwright's `toBeInViewport({ratio: 1})`
 * can read 0.9999998 for a node drawn at a fractional zoom.
 */
export async function expectWhollyOnCanvas(
  node: Locator,
  timeout = 5000
): Promise<void> {
  const canvas = node.locator(
    'xpath=ancestor::*[contains(concat(" ", normalize-space(@class), " "), " jp-mlp-PipelineCanvas ")][1]'
  );
  const minimap = canvas.locator('.jp-mlp-PipelineCanvas-minimap');
  const slack = 0.5;
  await expect
    .poll(
      async () => {
        const box = await node.boundingBox();
        const area = await canvas.boundingBox();
        const size = node.page().viewportSize();
        if (!box || !area || !size) {
          return 'not drawn';
        }
        const inside = (outer: {
          x: number;
          y: number;
          width: number;
          height: number;
        }) =>
          box.x >= outer.x - slack &&
          box.y >= outer.y - slack &&
          box.x + box.width <= outer.x + outer.width + slack &&
          box.y + box.height <= outer.y + outer.height + slack;
        if (!inside(area)) {
          return 'outside the canvas';
        }
        if (!inside({ x: 0, y: 0, width: size.width, height: size.height })) {
          return 'outside the page';
        }
        const map = (await minimap.count())
          ? await minimap.boundingBox()
          : null;
        if (
          map &&
          box.x < map.x + map.width - slack &&
          map.x < box.x + box.width - slack &&
          box.y < map.y + map.height - slack &&
          map.y < box.y + box.height - slack
        ) {
          return 'under the minimap';
        }
        return 'on the canvas';
      },
      { timeout }
    )
    .toBe('on the canvas');
}

/**
 * Open a pipeline file in the pipeline editor and wait, frame by frame, until its `stages` nodes
 * are all drawn (none hidden while React Flow measures it, each with its stage node inside);
 * returns how long that took in the page, in ms.
 */
export async function openPipelineTimed(
  page: IJupyterLabPageFixture,
  file: string,
  stages = 100
): Promise<number> {
  return page.evaluate(
    async ({ file, factory, stages }) => {
      const t0 = performance.now();
      await window.jupyterapp.commands.execute('docmanager:open', {
        path: file,
        factory
      });
      await new Promise<void>(resolve => {
        const check = () => {
          const nodes = document.querySelectorAll<HTMLElement>(
            '.jp-mlp-PipelineDocument:not(.lm-mod-hidden) .react-flow__node'
          );
          if (
            nodes.length === stages &&
            [...nodes].every(
              n =>
                n.style.visibility !== 'hidden' &&
                n.querySelector('.jp-mlp-StageNode')
            )
          ) {
            resolve();
          } else {
            requestAnimationFrame(check);
          }
        };
        check();
      });
      return performance.now() - t0;
    },
    { file, factory: PIPELINE_FACTORY, stages }
  );
}

/** A chart's canvas is on screen and big enough to read, once its view has settled (ECharts
 * and uPlot size their canvas to the box they were given and follow its resizes). */
export async function expectReadable(canvas: Locator): Promise<void> {
  await canvas.scrollIntoViewIfNeeded();
  await expect(canvas).toBeInViewport();
  await expect
    .poll(async () => (await canvas.boundingBox())?.width ?? 0)
    .toBeGreaterThanOrEqual(200);
  await expect
    .poll(async () => (await canvas.boundingBox())?.height ?? 0)
    .toBeGreaterThanOrEqual(150);
}

/** Merge UI figures into test-results/ui-figures.json (each spec adds its own). */
export function recordFigures(figures: Record<string, unknown>): void {
  const file = path.join(RESULTS, 'ui-figures.json');
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(fs.readFileSync(file, 'utf-8'));
  } catch {
    // no figures written yet
  }
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(
    file,
    JSON.stringify({ ...all, ...figures }, null, 2) + '\n'
  );
}

/**
 * Whether a text field's placeholder (or value), or a select's chosen option, is shown whole:
 * its width in the control's font fits the control's content box.
 */
export async function textFits(control: Locator): Promise<boolean> {
  return control.evaluate((node: Element) => {
    const el = node as HTMLInputElement | HTMLSelectElement;
    const text =
      el instanceof HTMLSelectElement
        ? (el.selectedOptions[0]?.text ?? '')
        : el.value || el.placeholder;
    const style = getComputedStyle(el);
    const ctx = document.createElement('canvas').getContext('2d')!;
    ctx.font = style.font;
    const room =
      el.clientWidth -
      parseFloat(style.paddingLeft) -
      parseFloat(style.paddingRight);
    return ctx.measureText(text).width <= room;
  });
}
