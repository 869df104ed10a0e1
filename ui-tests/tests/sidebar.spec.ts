import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

const SIDEBAR_ID = 'jupyter-mlp-sidebar';
const RUNS_ROUTE = '**/mlp/api/runs*';

async function openSidebar(page: IJupyterLabPageFixture) {
  const tab = page.locator(`.jp-SideBar [data-id="${SIDEBAR_ID}"]`);
  await expect(tab).toHaveAttribute('title', 'jupyter-mlp runs');
  await tab.click();
  const panel = page.locator(`#${SIDEBAR_ID}`);
  await expect(panel.getByRole('heading', { name: 'Runs' })).toBeInViewport();
  return panel;
}

test('the runs sidebar opens from its tab and shows a fresh store has no runs', async ({
  page
}) => {
  const panel = await openSidebar(page);

  // The test server's MLP_HOME is a new empty folder: the real route answers with no runs.
  await expect(panel.getByText('No runs yet.')).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('sidebar.png') });
});

test('the runs sidebar lists the runs the server returns', async ({ page }) => {
  await page.route(RUNS_ROUTE, route =>
    route.fulfill({
      json: {
        runs: [
          {
            id: 'r-42',
            name: 'train-resnet',
            project: 'demo',
            status: 'finished',
            started_at: 1700000000,
            ended_at: 1700000060,
            metrics: { accuracy: 0.91 }
          }
        ],
        next: null
      }
    })
  );

  const panel = await openSidebar(page);

  const run = panel.getByRole('listitem');
  await expect(run).toHaveCount(1);
  await expect(run).toContainText('train-resnet');
  await expect(run).toContainText('finished');
  await expect(run).toContainText('r-42');
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
