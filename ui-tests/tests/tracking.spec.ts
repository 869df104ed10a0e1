/**
 * Real kernels: a notebook tracked from its toolbar shows up in the runs panel and its cells
 * arrive live (the event feed, no refresh, no full-list polling); a tracked notebook with a failing
 * cell opens in the run detail with its charts and cell timeline; "Rerun…" with a changed
 * parameter makes a child run that finishes with the new value.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import {
  codeCell,
  docsPath,
  drawnPixels,
  notebookJson,
  openSidebar,
  runRow,
  store
} from './helpers';

test.use({ viewport: { width: 1200, height: 800 } });

test.beforeAll(() => {
  store('clear');
});

/** A notebook file of these cells, opened in the page (its kernel starts with the file's name). */
async function openNew(
  page: IJupyterLabPageFixture,
  dir: string,
  name: string,
  cells: string[]
): Promise<void> {
  const nb = notebookJson(cells.map(source => codeCell(source)));
  await page.contents.uploadContent(nb, 'text', `${dir}/${name}`);
  await page.notebook.openByPath(`${dir}/${name}`);
  await page.notebook.activate(name);
}

test('track a notebook from its toolbar: the run appears and its cells arrive live', async ({
  page,
  tmpPath
}) => {
  const listRequests: string[] = [];
  page.on('request', request => {
    const url = decodeURIComponent(request.url());
    // Full listings (not the refetch of changed rows, which filters by id).
    if (url.includes('/mlp/api/runs?') && !url.includes('id = "')) {
      listRequests.push(url);
    }
  });
  await openNew(page, tmpPath, 'tracked.ipynb', [
    'x = 1',
    'x = 2',
    'x = 3',
    'import jupyter_mlp as mlp\nmlp.log_metric("acc", 0.75)',
    '%mlp_track stop'
  ]);
  const panel = await openSidebar(page);
  await expect(panel.getByText('No runs yet.')).toBeVisible();
  const listedAtOpen = listRequests.length;

  await page.locator('.jp-NotebookPanel-toolbar .jp-mlp-TrackButton').click();
  // The two lines went in at the top and ran.
  expect(await page.notebook.getCellTextInput(0)).toBe(
    '%load_ext jupyter_mlp\n%mlp_track'
  );
  const row = runRow(panel, 'tracked');
  await expect(row).toHaveCount(1, { timeout: 30_000 });
  await expect(row.locator('.jp-mlp-Status')).toHaveText('running');

  for (const n of [1, 2, 3]) {
    await page.notebook.runCell(n); // the cells below the tracking one
    await expect(row.locator('.jp-mlp-RunTable-cells')).toHaveText(String(n));
  }
  await page.notebook.runCell(4);
  await expect(panel.getByRole('columnheader', { name: 'acc' })).toBeVisible();
  await expect(row.locator('.jp-mlp-RunTable-metric')).toHaveText('0.75');

  await page.notebook.runCell(5);
  await expect(row.locator('.jp-mlp-Status')).toHaveText('finished');
  // Everything above came from the event feed: no full list was fetched again.
  expect(listRequests.length).toBe(listedAtOpen);
});

test('the command palette tracks the active notebook', async ({
  page,
  tmpPath
}) => {
  await openNew(page, tmpPath, 'palette.ipynb', ['y = 2']);
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('jupyter-mlp:track-notebook')
  );
  expect(await page.notebook.getCellTextInput(0)).toBe(
    '%load_ext jupyter_mlp\n%mlp_track'
  );
  expect(await page.notebook.getCellTextInput(1)).toBe('y = 2');
  const panel = await openSidebar(page);
  await expect(runRow(panel, 'palette')).toHaveCount(1, { timeout: 30_000 });
});

const TRAIN = notebookJson([
  codeCell('lr = 0.1\nsteps = 2000', ['parameters']),
  codeCell('%load_ext jupyter_mlp\n%mlp_track train'),
  codeCell(
    'import jupyter_mlp as mlp\n' +
      'for i in range(steps):\n' +
      '    mlp.log_metric("loss", lr * 10 / (i + 1), step=i)\n' +
      'mlp.output("final_loss", lr * 10 / steps)'
  ),
  codeCell('assert lr > 0.2, f"lr={lr} is too small"')
]);

test('run detail shows charts and the failing cell; rerun with a new parameter', async ({
  page,
  tmpPath
}) => {
  await page.contents.uploadContent(TRAIN, 'text', `${tmpPath}/train.ipynb`);
  await page.notebook.openByPath(`${tmpPath}/train.ipynb`);
  await page.notebook.activate('train.ipynb');
  await page.notebook.run(); // the last cell fails

  const panel = await openSidebar(page);
  const row = runRow(panel, 'train');
  await expect(row).toHaveCount(1, { timeout: 30_000 });
  await row.click();

  const detail = page.locator('.jp-mlp-RunDetail').filter({
    has: page.getByRole('heading', { level: 1, name: 'train' })
  });
  await expect(detail).toBeVisible();
  await expect(detail.locator('tr[data-param="lr"]')).toContainText('float');
  await expect(detail.locator('tr[data-param="steps"]')).toContainText('int');

  const failing = detail.locator('.jp-mlp-Cell[data-status="error"]');
  await expect(failing).toHaveCount(1);
  await expect(failing).toContainText('assert lr > 0.2');
  await expect(failing).toContainText('AssertionError: lr=0.1 is too small');
  await expect(detail.locator('.jp-mlp-CellTimeline-summary')).toContainText(
    '1 failed'
  );

  const loss = detail.locator('.jp-mlp-Metrics .jp-mlp-Chart');
  await expect(loss).toHaveAttribute('data-points', '1000');
  await expect(loss.locator('canvas')).toBeInViewport();
  await expect
    .poll(() => drawnPixels(loss.locator('canvas')))
    .toBeGreaterThan(500);
  await page.screenshot({ path: docsPath('detail.png') });

  // The snapshot notebook opens as a copy (the user's notebook is never written).
  const runId = await detail.getAttribute('data-run-id');
  await detail.getByRole('button', { name: 'Open snapshot notebook' }).click();
  await expect(
    page.locator('.lm-TabBar-tabLabel').getByText(`${runId}-start.ipynb`)
  ).toBeVisible();
  await page
    .locator('.lm-TabBar-tabLabel')
    .getByText('train', { exact: true })
    .click();

  // Rerun… : a form typed from the run's params; invalid values are refused in the form.
  await detail.getByRole('button', { name: 'Rerun…' }).click();
  const dialog = page.locator('.jp-mlp-RerunDialog');
  const submit = dialog.getByRole('button', { name: 'Rerun', exact: true });
  const steps = dialog.locator('#jp-mlp-rerun-steps');
  await expect(steps).toHaveValue('2000');
  await steps.fill('2e3x');
  await expect(dialog.getByText('Enter a whole number.')).toBeVisible();
  await expect(submit).toBeDisabled();
  await steps.fill('200');
  await expect(submit).toBeEnabled();
  await dialog.locator('#jp-mlp-rerun-lr').fill('0.5');
  await expect(dialog.locator('select[name="executor"]')).toHaveValue('local');
  await submit.click();
  await expect(dialog).toHaveCount(0);

  // The child appears in the lineage and finishes with the new value.
  const child = detail.locator('.jp-mlp-Children li');
  await expect(child).toHaveCount(1, { timeout: 15_000 });
  await expect(child).toContainText('lr=0.5', { timeout: 30_000 });
  await expect(child.locator('.jp-mlp-Status')).toHaveText('finished', {
    timeout: 60_000
  });
  const childId = await child.locator('code').first().innerText();
  await child.getByRole('button').first().click();
  const childDetail = page.locator(
    `.jp-mlp-RunDetail[data-run-id="${childId}"]`
  );
  await expect(childDetail.locator('.jp-mlp-Lineage')).toContainText('train');
  await expect(childDetail.locator('tr[data-param="lr"]')).toContainText('0.5');
  await expect(
    childDetail.locator('.jp-mlp-Cell[data-status="error"]')
  ).toHaveCount(0);
});
