/**
 * The runs panel, run detail and compare view over four finished runs written to the test store
 * (ui-tests/mlp_store.py): filter, sort by a metric column, filter errors at the box, pin,
 * a run name that looks like HTML, charts that drew and zoom, and comparing two runs.
 */
import { expect, test } from '@jupyterlab/galata';

import {
  contrast,
  docsPath,
  drawnPixels,
  openSidebar,
  rowNames,
  runRow,
  seedRuns,
  store,
  widenSidebar
} from './helpers';

const XSS = '<img src=x onerror=alert(1)>';
let ids: Record<string, string> = {};

test.use({ viewport: { width: 1200, height: 800 } });

test.beforeAll(() => {
  store('clear');
  ids = seedRuns();
});

test('filter by a metric and sort by its column', async ({ page }) => {
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);
  // Newest first by default.
  expect(await rowNames(panel)).toEqual([XSS, 'gamma', 'beta', 'alpha']);

  await panel.getByLabel('Filter runs').fill('metrics.acc > 0.5');
  const table = panel.locator('.jp-mlp-RunTable');
  await expect(table).toHaveAttribute('data-filter', 'metrics.acc > 0.5');
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(3);
  await expect(runRow(panel, 'alpha')).toHaveCount(0);

  const acc = panel.getByRole('columnheader', { name: 'acc' });
  await acc.getByRole('button').click();
  await expect(table).toHaveAttribute('data-sort', '-metrics.acc');
  await expect(acc).toHaveAttribute('aria-sort', 'descending');
  await expect.poll(() => rowNames(panel)).toEqual(['beta', 'gamma', XSS]);

  await acc.getByRole('button').click();
  await expect(table).toHaveAttribute('data-sort', 'metrics.acc');
  await expect.poll(() => rowNames(panel)).toEqual([XSS, 'gamma', 'beta']);
  await expect(
    runRow(panel, 'beta').locator('.jp-mlp-RunTable-metric').first()
  ).toHaveText('0.91');
});

test('a malformed filter shows the server error at the box, pointing at the position', async ({
  page
}) => {
  const logged: string[] = [];
  page.on('console', message => {
    // The browser itself logs failed requests; our code must not log the filter error.
    if (
      message.type() === 'error' &&
      !message.text().startsWith('Failed to load resource')
    ) {
      logged.push(message.text());
    }
  });
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

  const box = panel.getByLabel('Filter runs');
  await box.fill('metrics.acc >');
  const error = panel.locator('.jp-mlp-Filter-error');
  await expect(error).toContainText('expected a value (at character 14)');
  await expect(error.locator('.jp-mlp-Filter-where')).toHaveAttribute(
    'data-position',
    '13'
  );
  await expect(box).toHaveAttribute('aria-invalid', 'true');
  // The last good rows stay listed while the filter is being fixed.
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

  await box.fill('metrics.acc > 0.8');
  await expect(error).toHaveCount(0);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(1);
  await expect(box).toHaveAttribute('aria-invalid', 'false');
  expect(logged).toEqual([]);
});

test('pin a run to the top; a name that looks like HTML shows as text', async ({
  page
}) => {
  let dialogs = 0;
  page.on('dialog', dialog => {
    dialogs++;
    void dialog.dismiss();
  });
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

  await runRow(panel, 'alpha').getByRole('button', { name: 'Pin' }).click();
  await expect
    .poll(() => rowNames(panel))
    .toEqual(['alpha', XSS, 'gamma', 'beta']);
  await expect(runRow(panel, 'alpha')).toHaveClass(/jp-mod-pinned/);
  // Pinned on the server: a reload keeps it on top.
  await page.reload();
  const again = await openSidebar(page);
  await expect
    .poll(() => rowNames(again))
    .toEqual(['alpha', XSS, 'gamma', 'beta']);
  await runRow(again, 'alpha').getByRole('button', { name: 'Unpin' }).click();
  await expect
    .poll(() => rowNames(again))
    .toEqual([XSS, 'gamma', 'beta', 'alpha']);

  await expect(runRow(again, XSS)).toHaveCount(1);
  await expect(again.locator('img')).toHaveCount(0);
  await runRow(again, XSS).click();
  const detail = page.locator(`.jp-mlp-RunDetail[data-run-id="${ids[XSS]}"]`);
  await expect(detail.getByRole('heading', { level: 1 })).toHaveText(XSS);
  await expect(page.locator('.jp-mlp-RunDetail img')).toHaveCount(0);
  await expect(
    page.locator('.lm-TabBar-tabLabel').getByText(XSS, { exact: true })
  ).toBeVisible();
  expect(dialogs).toBe(0);
});

test('run detail draws the metric charts and zoom re-fetches the steps in view', async ({
  page
}) => {
  await page.evaluate(
    id => window.jupyterapp.commands.execute('jupyter-mlp:open-run', { id }),
    ids.beta
  );
  const detail = page.locator(`.jp-mlp-RunDetail[data-run-id="${ids.beta}"]`);
  await expect(detail.getByRole('heading', { level: 1 })).toHaveText('beta');
  await expect(detail.locator('tr[data-param="lr"]')).toContainText('0.01');
  await expect(detail.locator('tr[data-param="lr"]')).toContainText('float');

  const loss = detail
    .locator('.jp-mlp-Metrics .jp-mlp-Chart')
    .filter({ hasText: 'loss' });
  // 5000 logged points arrive downsampled to at most 1000 (min/max band kept).
  await expect(loss).toHaveAttribute('data-points', '1000');
  await expect(loss).toContainText('1000 of 5000 points');
  const canvas = loss.locator('canvas');
  await expect(canvas).toBeInViewport();
  await expect.poll(() => drawnPixels(canvas)).toBeGreaterThan(500);

  // Drag across the middle of the chart: the server is asked for that step range.
  const zoomed = page.waitForRequest(
    r =>
      /\/metrics\?/.test(r.url()) &&
      /key=loss/.test(r.url()) &&
      /start=\d+/.test(r.url())
  );
  const over = loss.locator('.u-over');
  const box = (await over.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, {
    steps: 4
  });
  await page.mouse.up();
  const url = new URL((await zoomed).url());
  const start = Number(url.searchParams.get('start'));
  const end = Number(url.searchParams.get('end'));
  expect(start).toBeGreaterThan(1000);
  expect(end).toBeLessThan(4000);
  // A narrower range at full resolution: every logged point in it.
  await expect(loss).toContainText(`${end - start + 1} points`);
  await expect(loss.getByRole('button', { name: 'Reset zoom' })).toBeVisible();
  await loss.getByRole('button', { name: 'Reset zoom' }).click();
  await expect(loss).toContainText('1000 of 5000 points');

  // The dark theme: the chart is drawn again in its colours (canvas cannot use CSS variables).
  const lightText = await loss.getAttribute('data-text-color');
  await page.theme.setDarkTheme();
  const darkText = await page.evaluate(() =>
    getComputedStyle(document.body)
      .getPropertyValue('--jp-ui-font-color1')
      .trim()
  );
  expect(darkText).not.toBe(lightText);
  await expect(loss).toHaveAttribute('data-text-color', darkText);
  await expect.poll(() => drawnPixels(canvas)).toBeGreaterThan(500);
  await page.theme.setLightTheme();

  const gpu = detail.locator('.jp-mlp-Gpu .jp-mlp-Chart');
  await expect(gpu).toHaveCount(1);
  await expect(gpu).toHaveAttribute('data-points', '60');
  await expect(detail.locator('.jp-mlp-Gpu')).toContainText('Test GPU');
  await expect(
    detail.locator('.jp-mlp-Outputs tr[data-output="val_acc"]')
  ).toContainText('0.91');
  await expect(detail.locator('.jp-mlp-Environment')).toContainText('3.11.2');
});

test('compare two runs: differing params highlighted, curves overlaid', async ({
  page
}) => {
  const panel = await openSidebar(page);
  await widenSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);
  await page.screenshot({ path: docsPath('panel.png') });

  await runRow(panel, 'beta').getByRole('checkbox').check();
  await runRow(panel, 'gamma').getByRole('checkbox').check();
  await panel.getByRole('button', { name: 'Compare (2)' }).click();

  const compare = page.locator('.jp-mlp-Compare');
  await expect(compare.getByRole('heading', { level: 1 })).toHaveText(
    'Comparing 2 runs'
  );
  const lr = compare.locator('tr[data-param="lr"]');
  await expect(lr).toHaveClass(/jp-mlp-mod-differ/);
  await expect(lr).toContainText('0.01');
  await expect(lr).toContainText('0.001');
  await expect(compare.locator('tr[data-param="depth"]')).toHaveClass(
    /jp-mlp-mod-differ/
  );
  const optimizer = compare.locator('tr[data-param="optimizer"]');
  await expect(optimizer).not.toHaveClass(/jp-mlp-mod-differ/);

  const charts = compare.locator('.jp-mlp-Chart');
  await expect(charts).toHaveCount(2); // acc and loss
  const loss = charts.filter({ hasText: 'loss' });
  await expect(loss.locator('.u-legend')).toContainText('beta');
  await expect(loss.locator('.u-legend')).toContainText('gamma');
  await expect(loss).not.toHaveAttribute('data-points', '0');
  await expect(loss.locator('canvas')).toBeInViewport();
  await expect
    .poll(() => drawnPixels(loss.locator('canvas')))
    .toBeGreaterThan(500);
  await page.screenshot({ path: docsPath('compare.png') });

  await compare.getByLabel('Only differences').check();
  await expect(optimizer).toHaveCount(0);
  await expect(lr).toBeVisible();
});

test('every run status reads at 4.5:1, in both themes', async ({ page }) => {
  store('sweep'); // project "sweep": trials finished, pruned and failed
  const panel = await openSidebar(page);
  const setProject = (name: string) =>
    page.evaluate(async name => {
      const registry = await window.galata.getPlugin(
        '@jupyterlab/apputils-extension:settings'
      );
      await registry!.set('jupyter-mlp:plugin', 'defaultProject', name);
    }, name);
  await setProject('sweep');
  try {
    for (const dark of [false, true]) {
      if (dark) {
        await page.theme.setDarkTheme();
      }
      for (const status of ['finished', 'failed', 'pruned']) {
        const text = panel
          .locator(
            `.jp-mlp-RunTable-row .jp-mlp-Status[data-status="${status}"]`
          )
          .first();
        await expect(text).toBeVisible();
        // whole, not cut by its column (the state's dot takes room too)
        const cell = text.locator('xpath=..');
        expect(
          await cell.evaluate(node => node.scrollWidth <= node.clientWidth + 1),
          `${status} whole`
        ).toBe(true);
        expect(
          await contrast(text),
          `${status} (dark: ${dark})`
        ).toBeGreaterThanOrEqual(4.5);
      }
    }
  } finally {
    await page.theme.setLightTheme();
    await setProject('ui');
  }
});

test('settings choose the metric columns and the project', async ({ page }) => {
  const panel = await openSidebar(page);
  const header = (name: string) =>
    panel.getByRole('columnheader', { name, exact: true });
  await expect(header('acc')).toHaveCount(1);
  await expect(header('loss')).toHaveCount(1);

  const set = (key: string, value: unknown) =>
    page.evaluate(
      async ([key, value]) => {
        const registry = await window.galata.getPlugin(
          '@jupyterlab/apputils-extension:settings'
        );
        await registry!.set('jupyter-mlp:plugin', key, value as never);
      },
      [key, value] as const
    );
  await set('metricColumns', ['loss']);
  await expect(header('acc')).toHaveCount(0);
  await expect(header('loss')).toHaveCount(1);

  await set('defaultProject', 'another');
  await expect(panel.locator('.jp-mlp-RunsPanel-project')).toHaveText(
    'another'
  );
  await expect(panel.getByText('No runs yet.')).toBeVisible();
  await set('defaultProject', 'ui');
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

  const live = panel.locator('.jp-mlp-RunsPanel-live');
  await expect(live).toHaveText('live');
  await set('liveUpdates', false);
  await expect(live).toHaveText('paused');
  await set('liveUpdates', true);
  await expect(live).toHaveText('live');
});
