/**
 * Compare many runs: 40 runs of a grid search (lr among 3 values x a seed each, a `loss` curve
 * each) selected in the runs panel and compared; grouped by lr, each metric's chart draws one mean
 * curve per group with its band (min–max, then ±std) and a legend entry "lr=0.01 (n=13)"; the
 * tables group too; the parallel coordinates of lr and seed to a metric are drawn big enough to
 * read, and a brush on the metric's axis narrows the tables; every text keeps a contrast of 4.5 in
 * the dark theme.
 *
 * Figure (printed, and merged into test-results/ui-figures.json): compare_40_runs_ms, from the
 * click on Compare (40) to the grouped charts painted (the grouping chosen before is kept for
 * the next compare), with the first open (ungrouped) and the regrouping beside it.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import {
  contrast,
  docsPath,
  drawnPixels,
  openSidebar,
  expectReadable,
  recordFigures,
  store
} from './helpers';

test.use({ viewport: { width: 1400, height: 900 } });

interface IGrid {
  ids: string[];
  by_lr: Record<string, number>;
}

const N = 40;

test.beforeAll(() => {
  store('clear');
});

/** Resolves (in the page) when every grouped chart shows `groups` groups, loaded and painted. */
async function armPaintTimer(
  page: IJupyterLabPageFixture,
  what: 'grouped' | 'overlaid',
  groups = 3
): Promise<void> {
  await page.evaluate(
    ({ what, groups }) => {
      const w = window as unknown as { mlpPainted: Promise<number> };
      const start = performance.now();
      const ready = () => {
        const view = document.querySelector(
          '.jp-mlp-CompareWidget:not(.lm-mod-hidden) .jp-mlp-Compare'
        );
        const figures = view
          ? [...view.querySelectorAll<HTMLElement>('.jp-mlp-Chart')]
          : [];
        if (!figures.length) {
          return false;
        }
        return figures.every(f => {
          const wrap = f.closest('.jp-mlp-GroupChart');
          const shape =
            what === 'grouped'
              ? wrap?.getAttribute('data-groups') === String(groups)
              : !wrap;
          return (
            shape &&
            f.getAttribute('aria-busy') === 'false' &&
            Number(f.getAttribute('data-points')) > 0 &&
            f.querySelector('canvas')
          );
        });
      };
      w.mlpPainted = new Promise<number>(resolve => {
        const done = () =>
          requestAnimationFrame(() =>
            setTimeout(() => resolve(performance.now() - start), 0)
          );
        const observer = new MutationObserver(() => {
          if (ready()) {
            observer.disconnect();
            done();
          }
        });
        observer.observe(document.body, {
          childList: true,
          subtree: true,
          attributes: true,
          attributeFilter: ['data-groups', 'aria-busy', 'data-points']
        });
      });
    },
    { what, groups }
  );
}

function painted(page: IJupyterLabPageFixture): Promise<number> {
  return page.evaluate(
    () => (window as unknown as { mlpPainted: Promise<number> }).mlpPainted
  );
}

/** The chart's uPlot: its legend labels shown, its bands, and whether each band has width. */
async function bandInfo(chart: Locator) {
  return chart.locator('.jp-mlp-Chart-plot').evaluate(node => {
    const plot = (
      node as HTMLElement & {
        mlpChart?: {
          bands?: { series: [number, number] }[];
          data: (number | null)[][];
        };
      }
    ).mlpChart;
    if (!plot) {
      return null;
    }
    const bands = plot.bands ?? [];
    return {
      bands: bands.length,
      wide: bands.map(b => {
        const [hi, lo] = b.series;
        return plot.data[hi].some(
          (v, i) =>
            v !== null &&
            plot.data[lo][i] !== null &&
            v > plot.data[lo][i]! + 1e-6
        );
      })
    };
  });
}

test('compare 40 runs: grouped by lr with bands, parallel coordinates, brushing, dark theme', async ({
  page
}) => {
  test.setTimeout(180_000);
  const grid = JSON.parse(store('grid', '--n', String(N))) as IGrid;
  expect(grid.ids).toHaveLength(N);

  // Select the 40 runs in the panel and press Compare, as a user does.
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunsPanel-count')).toHaveText(
    `${N} runs`
  );
  await panel.getByRole('button', { name: `Select all ${N}` }).click();
  const compareButton = panel.getByRole('button', { name: `Compare (${N})` });
  await expect(compareButton).toBeEnabled();
  await armPaintTimer(page, 'overlaid');
  await compareButton.click();
  const firstOpen = await painted(page);

  const compare = page.locator('.jp-mlp-Compare');
  await expect(compare.getByRole('heading', { level: 1 })).toHaveText(
    `Comparing ${N} runs`
  );
  // 40 overlaid lines: no legend of 40 entries, a note instead.
  const overlay = compare.locator('.jp-mlp-Chart').filter({ hasText: 'loss' });
  await expect(overlay.locator('.jp-mlp-Chart-note')).toContainText(
    `${N} runs (no legend)`
  );

  // Group by lr: one mean curve per lr with its min–max band, legend "lr=… (n=…)".
  await armPaintTimer(page, 'grouped');
  await compare.getByLabel('Group by').selectOption('lr');
  const regroup = await painted(page);
  const loss = compare.locator('.jp-mlp-GroupChart[data-metric="loss"]');
  await expect(loss).toHaveAttribute('data-groups', '3');
  await expect(loss).toHaveAttribute('data-band', 'minmax');
  const legend = loss.locator('.u-legend .u-series:visible');
  await expect(legend).toHaveCount(4); // the step, then the three groups
  const entries = legend.filter({ hasText: /\(n=\d+\)/ });
  await expect(entries).toHaveCount(3);
  await expect(entries).toContainText([
    `lr=0.001 (n=${grid.by_lr['0.001']})`,
    `lr=0.01 (n=${grid.by_lr['0.01']})`,
    `lr=0.1 (n=${grid.by_lr['0.1']})`
  ]);
  await expect
    .poll(() => bandInfo(loss))
    .toEqual({
      bands: 3,
      wide: [true, true, true]
    });
  const lossCanvas = loss.locator('canvas').first();
  await lossCanvas.scrollIntoViewIfNeeded();
  await expect(lossCanvas).toBeInViewport();
  await expect.poll(() => drawnPixels(lossCanvas)).toBeGreaterThan(2000);

  await compare.evaluate(node => node.parentElement?.scrollTo(0, 0));
  await page.screenshot({ path: docsPath('compare-grouped.png') });
  await lossCanvas.scrollIntoViewIfNeeded();
  await page.screenshot({ path: test.info().outputPath('grouped-charts.png') });

  // ±std instead of min–max.
  await compare.getByRole('radio', { name: '±std' }).check();
  await expect(loss).toHaveAttribute('data-band', 'std');
  await expect(loss.locator('.jp-mlp-Chart-note')).toContainText('± std');
  await expect
    .poll(() => bandInfo(loss))
    .toEqual({
      bands: 3,
      wide: [true, true, true]
    });
  await compare.getByRole('radio', { name: 'min–max' }).check();

  // The tables by group: 3 columns, n in the metrics' header, the mean of the latest values.
  const groupHeads = compare.locator(
    '.jp-mlp-Compare-metrics thead th[data-group]'
  );
  await expect(groupHeads).toHaveCount(3);
  await expect(groupHeads.first()).toContainText(
    `lr=0.001 (n=${grid.by_lr['0.001']})`
  );
  await expect(
    compare.locator('.jp-mlp-Compare-params tr[data-param="seed"] td').first()
  ).toContainText(`${grid.by_lr['0.001']} values`);

  // Parallel coordinates of lr, seed -> acc: drawn in the viewport, big enough to read.
  const parallel = compare.locator('.jp-mlp-CompareParallel');
  const box = parallel.locator('.jp-mlp-Parallel');
  await expect(box).toHaveAttribute('data-lines', String(N));
  await expect(box).toHaveAttribute('data-axes', '3');
  const canvas = box.locator('canvas').first();
  await expectReadable(canvas);

  // Brush the metric's axis (the last, at the right edge) from its top to its middle.
  const area = (await canvas.boundingBox())!;
  const axisX = area.x + area.width - 72; // PARALLEL_MARGIN.right
  const top = area.y + 40; // PARALLEL_MARGIN.top
  const bottom = area.y + area.height - 28; // PARALLEL_MARGIN.bottom
  await page.mouse.move(axisX, top + 2);
  await page.mouse.down();
  await page.mouse.move(axisX, (top + bottom) / 2, { steps: 8 });
  await page.mouse.up();
  await expect
    .poll(async () => Number(await box.getAttribute('data-active')))
    .toBeLessThan(N);
  const kept = Number(await box.getAttribute('data-active'));
  expect(kept).toBeGreaterThan(0);
  await expect(parallel.locator('.jp-mlp-Chart-note')).toContainText(
    `${kept} of ${N} runs in the brush`
  );
  const note = compare.locator('.jp-mlp-Compare-brushNote');
  await expect(note).toContainText(`the ${kept} of ${N} runs in the brush`);
  // Grouped, the tables count only the brushed runs; ungrouped, they show a column per run.
  await compare.getByLabel('Group by').selectOption('');
  await expect(
    compare.locator('.jp-mlp-Compare-params thead th[scope="col"]')
  ).toHaveCount(kept + 1);
  await compare.getByLabel('Group by').selectOption('lr');
  await expect(loss).toHaveAttribute('data-groups', '3');

  // Dark theme: the texts keep a contrast of 4.5; the charts are drawn again.
  await page.theme.setDarkTheme();
  await expect(page.locator('body')).toHaveAttribute(
    'data-jp-theme-light',
    'false'
  );
  const texts: [string, Locator][] = [
    ['title', compare.getByRole('heading', { level: 1 })],
    ['group by', compare.locator('.jp-mlp-Compare-field').first()],
    ['group label', compare.locator('.jp-mlp-Compare-groupLabel').first()],
    ['group header', groupHeads.first()],
    ['group mean', compare.locator('.jp-mlp-Compare-metrics tbody td').first()],
    ['legend', legend.nth(1).locator('.u-label')],
    ['parallel title', parallel.locator('.jp-mlp-Chart-name')],
    ['parallel note', parallel.locator('.jp-mlp-Chart-note')],
    ['brush note', note]
  ];
  for (const [what, text] of texts) {
    await expect
      .poll(() => contrast(text), { message: what })
      .toBeGreaterThanOrEqual(4.5);
  }
  await expectReadable(box.locator('canvas').first());
  await page.screenshot({ path: test.info().outputPath('dark.png') });
  await expect(loss).toHaveAttribute('data-groups', '3');
  await expect
    .poll(() => drawnPixels(loss.locator('canvas').first()))
    .toBeGreaterThan(2000);
  await compare.getByRole('button', { name: 'show all' }).click();
  await expect(note).toHaveCount(0);
  await page.theme.setLightTheme();

  // The figure: Compare again (the lr grouping is kept), from the click to grouped charts painted.
  await page.activity.closePanel(`Compare ${N} runs`);
  await expect(compare).toHaveCount(0);
  await armPaintTimer(page, 'grouped');
  await compareButton.click();
  const grouped = await painted(page);
  await expect(
    compare.locator('.jp-mlp-GroupChart[data-metric="loss"]')
  ).toHaveAttribute('data-groups', '3');

  const figures = {
    compare_40_runs_ms: Math.round(grouped),
    compare_40_runs_first_open_ms: Math.round(firstOpen),
    compare_40_runs_group_by_ms: Math.round(regroup)
  };
  console.log(`MLPBENCH compare_40_runs_ms ${figures.compare_40_runs_ms}`);
  console.log(
    `MLPBENCH compare_40_runs_first_open_ms ${figures.compare_40_runs_first_open_ms}`
  );
  console.log(
    `MLPBENCH compare_40_runs_group_by_ms ${figures.compare_40_runs_group_by_ms}`
  );
  recordFigures(figures);
});

test('compare 200 runs: grouped charts and parallel coordinates stay quick and legible', async ({
  page
}) => {
  test.setTimeout(180_000);
  store('clear');
  const grid = JSON.parse(store('grid', '--n', '200')) as IGrid;
  // The panel pages 150 runs at first: open the compare of all 200 as a command does.
  await openSidebar(page);
  await armPaintTimer(page, 'overlaid');
  await page.evaluate(ids => {
    void window.jupyterapp.commands.execute('jupyter-mlp:compare-runs', {
      ids
    });
  }, grid.ids);
  const open200 = await painted(page);
  const compare = page.locator('.jp-mlp-Compare');
  await expect(compare.getByRole('heading', { level: 1 })).toHaveText(
    'Comparing 200 runs'
  );
  await armPaintTimer(page, 'grouped');
  await compare.getByLabel('Group by').selectOption('lr');
  const group200 = await painted(page);
  const loss = compare.locator('.jp-mlp-GroupChart[data-metric="loss"]');
  await expect(
    loss.locator('.u-legend .u-series:visible').filter({ hasText: /\(n=\d+\)/ })
  ).toHaveCount(3);
  const box = compare.locator('.jp-mlp-CompareParallel .jp-mlp-Parallel');
  await expect(box).toHaveAttribute('data-lines', '200');
  await expectReadable(box.locator('canvas').first());
  const figures = {
    compare_200_runs_open_ms: Math.round(open200),
    compare_200_runs_group_by_ms: Math.round(group200)
  };
  console.log(
    `MLPBENCH compare_200_runs_open_ms ${figures.compare_200_runs_open_ms}`
  );
  console.log(
    `MLPBENCH compare_200_runs_group_by_ms ${figures.compare_200_runs_group_by_ms}`
  );
  recordFigures(figures);
});
