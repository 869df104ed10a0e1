import { expect, test } from '@jupyterlab/galata';

import { contrast, openSidebar, SIDEBAR_ID, store } from './helpers';

const RUNS_ROUTE = '**/mlp/api/runs*';

// Other specs leave runs in the shared test store: start these from an empty one.
test.beforeAll(() => {
  store('clear');
});

test('the runs sidebar opens from its tab and shows a fresh store has no runs', async ({
  page
}) => {
  const panel = await openSidebar(page);

  // The real route answers with no runs.
  await expect(panel.getByText('No runs yet.')).toBeVisible();
  // The next step, as text: how to record a run.
  const start = panel.locator('.jp-mlp-RunsPanel-start');
  await expect(start).toBeInViewport({ ratio: 1 });
  await expect(start).toHaveText(
    'To record one, run %load_ext jupyter_mlp then %mlp_track in a notebook, or press Track in its toolbar.'
  );
  await expect(start.locator('code')).toHaveText([
    '%load_ext jupyter_mlp',
    '%mlp_track'
  ]);
  await page.screenshot({ path: test.info().outputPath('sidebar.png') });
  // Legible in the dark theme too.
  await page.theme.setDarkTheme();
  for (const text of [start, ...(await start.locator('code').all())]) {
    await expect.poll(() => contrast(text)).toBeGreaterThanOrEqual(4.5);
  }
  await page.theme.setLightTheme();
});

test('the runs sidebar lists the runs the server returns', async ({ page }) => {
  await page.route(RUNS_ROUTE, route =>
    route.fulfill({
      json: {
        runs: [
          {
            id: 'a1b2c3d4e5f6',
            name: 'train-resnet',
            project: 'demo',
            status: 'finished',
            started_at: 1700000000,
            ended_at: 1700000060,
            duration: 60,
            metrics: { accuracy: 0.91 }
          }
        ],
        next: null
      }
    })
  );

  const panel = await openSidebar(page);

  const run = panel.locator('.jp-mlp-RunTable-row');
  await expect(run).toHaveCount(1);
  await expect(run).toContainText('train-resnet');
  await expect(run).toContainText('finished');
  await expect(run).toContainText('0.91');
  await expect(run).toHaveAttribute('data-run-id', 'a1b2c3d4e5f6');
  await expect(
    panel.getByRole('columnheader', { name: 'accuracy' })
  ).toBeVisible();
  await expect(panel.locator('.jp-mlp-RunsPanel-count')).toHaveText('1 run');
});

test('the runs sidebar shows the server error as text', async ({ page }) => {
  await page.route(RUNS_ROUTE, route =>
    route.fulfill({ status: 500, json: { message: '<b>store is locked</b>' } })
  );

  const panel = await openSidebar(page);

  await expect(panel.getByRole('alert')).toHaveText(
    'Could not load runs: <b>store is locked</b>'
  );
});

test('the palette command opens the runs sidebar', async ({ page }) => {
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('jupyter-mlp:open-runs')
  );

  await expect(
    page.locator(`#${SIDEBAR_ID}`).getByRole('heading', { name: 'Runs' })
  ).toBeInViewport();
});
