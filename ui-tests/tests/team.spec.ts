/**
 * Team mode (issue 16): one store, many users. Runs of two owners are written to the test store
 * (ui-tests/mlp_store.py team): this page's user ("me", as the server's /me names it) and alice.
 * The Owner column shows and stays legible (dark theme too), Mine / Team narrows the list to my
 * runs and back, someone else's run offers no Rename / Tags / Notes / Pin / Delete / Cancel
 * (detail, context menu, commands) while mine does, a refusal (403) reads as the server's words
 * where the action was started, and owners show in Compare, the sweep list and view, and the
 * pipeline editor's pinned runs and history.
 *
 * The test server is not configured as a team's: where its /me does not say `team` (or has no
 * such route yet) the page is told it is (a routed /me), and where the server would not refuse
 * a change of someone else's run, the refusal is routed too, in the server's shape.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

import {
  contrast,
  openSidebar,
  PIPELINE_FACTORY,
  rowNames,
  runRow,
  store
} from './helpers';

const OTHER = 'alice';

/** A route of the server's API, whatever its query (JupyterLab adds a cache buster). */
function api(path: string): (url: URL) => boolean {
  return url => url.pathname.endsWith(`/mlp/api/${path}`);
}

interface IMe {
  name: string | null;
  admin: boolean;
  team: boolean;
}

interface ITeam {
  runs: Record<string, string>;
  sweep: string;
  me: string;
  other: string;
}

interface ISession {
  seeded: ITeam;
  me: string;
  /** The server itself refuses changes of alice's runs to this user (team mode, not admin). */
  serverRefuses: boolean;
}

/**
 * Make this page a team member's: read who the server takes it for (/me; the page's cookie
 * names it), seed the team's runs for that name, and where the server is not in team mode, tell
 * the page it is (`admin` for a stale identity that still offers everything).
 */
async function joinTeam(
  page: IJupyterLabPageFixture,
  options: { admin?: boolean } = {}
): Promise<ISession> {
  const response = await page.request.get('/mlp/api/me');
  const real = response.ok() ? ((await response.json()) as IMe) : null;
  const me = real?.name ?? 'me-tester';
  const serverRefuses = !!real && real.team && !real.admin;
  await page.route(api('me'), route =>
    !serverRefuses || options.admin
      ? route.fulfill({
          json: { name: me, admin: !!options.admin, team: true, store: '' }
        })
      : // Galata answers JupyterLab's own /api/me for the page, and its pattern catches
        // /mlp/api/me too: the server's answer is let through.
        route.continue()
  );
  store('clear');
  const seeded = JSON.parse(store('team', '--me', me)) as ITeam;
  await page.reload();
  return { seeded, me, serverRefuses };
}

/** A refusal of a change of alice's run, as the server words it. */
function refusal(id: string, action: string): string {
  return `run ${id.slice(0, 4)} belongs to ${OTHER}; only ${OTHER} and the team's admins (carol) may ${action} it`;
}

/** Where the server would not refuse (not in team mode), refuse `method` on alice's run here. */
async function refuseUnlessServerDoes(
  page: IJupyterLabPageFixture,
  session: ISession,
  id: string,
  method: string,
  action: string
): Promise<void> {
  if (session.serverRefuses) {
    return;
  }
  await page.route(api(`runs/${id}`), route =>
    route.request().method() === method
      ? route.fulfill({ status: 403, json: { message: refusal(id, action) } })
      : route.fallback()
  );
}

function ownerCell(panel: Locator, name: string): Locator {
  return runRow(panel, name).locator('.jp-mlp-RunTable-owner .jp-mlp-Owner');
}

/** Whole and legible: in the viewport, big enough, its text not cut. */
async function expectLegible(label: Locator): Promise<void> {
  await expect(label).toBeInViewport();
  const box = (await label.boundingBox())!;
  expect(box.height).toBeGreaterThanOrEqual(10);
  expect(box.width).toBeGreaterThanOrEqual(20);
  const fontPx = await label.evaluate(node =>
    parseFloat(getComputedStyle(node).fontSize)
  );
  // JupyterLab's smallest UI text (--jp-ui-font-size0, 10.8 px) at the least.
  expect(fontPx).toBeGreaterThanOrEqual(10.5);
  const cell = label.locator('xpath=..');
  expect(
    await cell.evaluate(node => node.scrollWidth <= node.clientWidth + 1)
  ).toBe(true);
}

async function openRun(page: IJupyterLabPageFixture, id: string) {
  await page.evaluate(async runId => {
    await window.jupyterapp.commands.execute('jupyter-mlp:open-run', {
      id: runId
    });
  }, id);
  const detail = page.locator(`.jp-mlp-RunDetail[data-run-id="${id}"]`);
  await expect(detail.getByRole('heading', { level: 1 })).toBeVisible();
  return detail;
}

/** The labels of the context menu opened on a row (closed again). */
async function menuOf(page: IJupyterLabPageFixture, row: Locator) {
  await row.click({ button: 'right' });
  const menu = page.locator('.lm-Menu').last();
  await expect(menu).toBeVisible();
  const labels = await menu
    .locator('.lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel')
    .allInnerTexts();
  await page.keyboard.press('Escape');
  await expect(menu).toBeHidden();
  return labels.filter(Boolean);
}

const OWNER_ONLY = ['Pin', 'Unpin', 'Rename…', 'Tags…', 'Notes…', 'Delete…'];

test.use({ viewport: { width: 1280, height: 800 } });

test('the Owner column is shown in a team store, legible at the default width and in the dark theme', async ({
  page
}) => {
  const { me } = await joinTeam(page);
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);
  const header = panel.getByRole('columnheader', { name: 'Owner' });
  await expect(header).toBeInViewport();

  await expect(ownerCell(panel, 'baseline-other')).toHaveText(OTHER);
  await expect(ownerCell(panel, 'long-other')).toHaveText(OTHER);
  await expect(ownerCell(panel, 'tuned-mine')).toHaveText(me);
  await expectLegible(ownerCell(panel, 'baseline-other'));
  await expect(ownerCell(panel, 'baseline-other')).toHaveAttribute(
    'title',
    `Owner: ${OTHER}`
  );
  // A long name is cut to the column, and whole in its tooltip.
  await expect(ownerCell(panel, 'tuned-mine')).toHaveAttribute(
    'title',
    `Owner: ${me} (you)`
  );

  // The column is chosen like the others (Columns menu), off and on again.
  await panel.locator('.jp-mlp-ColumnsMenu > summary').click();
  const choice = panel
    .locator('.jp-mlp-ColumnsMenu-list label')
    .filter({ hasText: 'Owner' })
    .locator('input');
  await expect(choice).toBeChecked();
  await choice.uncheck();
  await expect(header).toHaveCount(0);
  await choice.check();
  await expect(header).toBeInViewport();
  await panel.locator('.jp-mlp-ColumnsMenu > summary').click();

  const toggle = panel.getByRole('group', { name: 'Whose runs' });
  await expect(toggle).toBeInViewport();

  await page.theme.setDarkTheme();
  for (const label of [
    ownerCell(panel, 'baseline-other'), // a pinned row (tinted)
    ownerCell(panel, 'long-other'),
    ownerCell(panel, 'tuned-mine'),
    header,
    toggle.getByRole('button', { name: 'Mine' }),
    toggle.getByRole('button', { name: 'Team' })
  ]) {
    expect(await contrast(label)).toBeGreaterThanOrEqual(4.5);
  }
  await page.screenshot({
    path: test.info().outputPath('team-dark.png')
  });
  await page.theme.setLightTheme();
  for (const label of [
    ownerCell(panel, 'long-other'),
    toggle.getByRole('button', { name: 'Team' })
  ]) {
    expect(await contrast(label)).toBeGreaterThanOrEqual(4.5);
  }
});

test('Mine / Team lists my runs only and back, over the filter as typed, and is kept', async ({
  page
}) => {
  const { me } = await joinTeam(page);
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);
  const toggle = panel.getByRole('group', { name: 'Whose runs' });
  const mine = toggle.getByRole('button', { name: 'Mine' });
  const team = toggle.getByRole('button', { name: 'Team' });
  await expect(team).toHaveAttribute('aria-pressed', 'true');

  const asked = page.waitForRequest(
    r =>
      /\/mlp\/api\/runs\?/.test(r.url()) &&
      (new URL(r.url()).searchParams.get('filter') ?? '').includes(
        `owner = "${me}"`
      )
  );
  await mine.click();
  await asked;
  await expect(mine).toHaveAttribute('aria-pressed', 'true');
  await expect
    .poll(() => rowNames(panel))
    .toEqual(['tuned-mine', 'baseline-mine']);

  // The filter typed stays as typed; Mine narrows it.
  const box = panel.getByLabel('Filter runs');
  await box.fill('name ~ baseline');
  await expect(panel.locator('.jp-mlp-RunTable')).toHaveAttribute(
    'data-filter',
    'name ~ baseline'
  );
  await expect.poll(() => rowNames(panel)).toEqual(['baseline-mine']);
  await expect(box).toHaveValue('name ~ baseline');
  // A filter error points into the text typed, not into what Mine adds.
  await box.fill('name ~');
  await expect(panel.locator('.jp-mlp-Filter-where')).toHaveAttribute(
    'data-position',
    /^[0-6]$/
  );
  await box.fill('name ~ baseline');
  await expect.poll(() => rowNames(panel)).toEqual(['baseline-mine']);

  await team.click();
  await expect
    .poll(() => rowNames(panel))
    .toEqual(['baseline-other', 'baseline-mine']);
  await expect(box).toHaveValue('name ~ baseline');

  // Kept in the settings: Mine again, reload, still Mine.
  await box.fill('');
  await mine.click();
  await expect
    .poll(() => rowNames(panel))
    .toEqual(['tuned-mine', 'baseline-mine']);
  await expect
    .poll(() =>
      page.evaluate(async () => {
        const settings =
          await window.jupyterapp.serviceManager.settings.fetch(
            'jupyter-mlp:plugin'
          );
        return (settings.raw ?? '').includes('"mine"');
      })
    )
    .toBe(true);
  await page.reload();
  const again = await openSidebar(page);
  await expect(
    again.getByRole('button', { name: 'Mine', exact: true })
  ).toHaveAttribute('aria-pressed', 'true');
  await expect
    .poll(() => rowNames(again))
    .toEqual(['tuned-mine', 'baseline-mine']);
  await again.getByRole('button', { name: 'Team', exact: true }).click();
  await expect(again.locator('.jp-mlp-RunTable-row')).toHaveCount(4);
});

test("someone else's run offers no owner's actions (detail, row, context menu, commands); mine does", async ({
  page
}) => {
  const { seeded, me } = await joinTeam(page);
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

  // Their detail: Rerun, Sweep and the notebook stay; Pin, Rename, Tags, Notes, Delete do not.
  const theirs = await openRun(page, seeded.runs['baseline-other']);
  await expect(theirs.locator('.jp-mlp-RunDetail-owner')).toContainText(OTHER);
  await expect(theirs.getByRole('button', { name: 'Rerun…' })).toBeVisible();
  await expect(theirs.getByRole('button', { name: 'Sweep…' })).toBeVisible();
  for (const name of OWNER_ONLY) {
    await expect(theirs.getByRole('button', { name, exact: true })).toHaveCount(
      0
    );
  }
  await page.screenshot({ path: test.info().outputPath('their-run.png') });
  await page.theme.setDarkTheme();
  expect(
    await contrast(theirs.locator('.jp-mlp-RunDetail-owner .jp-mlp-Owner'))
  ).toBeGreaterThanOrEqual(4.5);
  await page.theme.setLightTheme();
  // Their running job: no Cancel either.
  const running = await openRun(page, seeded.runs['long-other']);
  await expect(running.getByRole('button', { name: 'Rerun…' })).toBeVisible();
  await expect(
    running.getByRole('button', { name: 'Cancel', exact: true })
  ).toHaveCount(0);

  // Mine: all of them.
  const mineDetail = await openRun(page, seeded.runs['tuned-mine']);
  await expect(mineDetail.locator('.jp-mlp-RunDetail-owner')).toContainText(
    `${me} (you)`
  );
  for (const name of ['Unpin', 'Rename…', 'Tags…', 'Notes…', 'Delete…']) {
    await expect(
      mineDetail.getByRole('button', { name, exact: true })
    ).toBeVisible();
  }

  // The row: their pin shows but is no button; mine is one.
  await expect(
    runRow(panel, 'baseline-other').locator('.jp-mlp-PinMark')
  ).toHaveText('★');
  await expect(
    runRow(panel, 'baseline-other').getByRole('button', { name: 'Unpin' })
  ).toHaveCount(0);
  await expect(
    runRow(panel, 'long-other').getByRole('button', { name: 'Pin' })
  ).toHaveCount(0);
  await expect(
    runRow(panel, 'baseline-mine').getByRole('button', { name: 'Pin' })
  ).toBeVisible();

  // Context menus.
  const theirMenu = await menuOf(page, runRow(panel, 'baseline-other'));
  expect(theirMenu).toEqual(
    expect.arrayContaining(['Open Run', 'Rerun…', 'Sweep…'])
  );
  for (const label of [
    'Unpin Run',
    'Pin Run',
    'Rename Run…',
    'Edit Run Tags…',
    'Edit Run Notes…',
    'Delete Run…',
    'Cancel Run'
  ]) {
    expect(theirMenu).not.toContain(label);
  }
  const myMenu = await menuOf(page, runRow(panel, 'baseline-mine'));
  expect(myMenu).toEqual(
    expect.arrayContaining([
      'Rerun…',
      'Pin Run',
      'Rename Run…',
      'Edit Run Tags…',
      'Edit Run Notes…',
      'Delete Run…'
    ])
  );

  // The commands themselves.
  const visible = (command: string, id: string) =>
    page.evaluate(
      ([c, runId]) => window.jupyterapp.commands.isVisible(c, { id: runId }),
      [command, id]
    );
  for (const command of [
    'jupyter-mlp:rename-run',
    'jupyter-mlp:pin-run',
    'jupyter-mlp:delete-run',
    'jupyter-mlp:edit-run-tags',
    'jupyter-mlp:edit-run-notes'
  ]) {
    expect(await visible(command, seeded.runs['baseline-other'])).toBe(false);
    expect(await visible(command, seeded.runs['baseline-mine'])).toBe(true);
  }
  expect(
    await visible('jupyter-mlp:cancel-run', seeded.runs['long-other'])
  ).toBe(false);

  // Renaming my own run goes through, from its context menu.
  await runRow(panel, 'baseline-mine').click({ button: 'right' });
  await page
    .locator('.lm-Menu .lm-Menu-itemLabel')
    .getByText('Rename Run…', { exact: true })
    .click();
  const dialog = page.locator('.jp-Dialog');
  await dialog.locator('input').fill('baseline-mine-2');
  await dialog.getByRole('button', { name: 'Rename' }).click();
  await expect(runRow(panel, 'baseline-mine-2')).toHaveCount(1);
});

test('a refusal (403) reads as the server words it, where the action was started', async ({
  page
}) => {
  // A stale identity: the page still takes itself for an admin, the server knows better.
  const session = await joinTeam(page, { admin: true });
  const { seeded } = session;
  const id = seeded.runs['baseline-other'];
  await refuseUnlessServerDoes(page, session, id, 'DELETE', 'delete');
  const detail = await openRun(page, id);
  await detail.getByRole('button', { name: 'Delete…', exact: true }).click();
  await page
    .locator('.jp-Dialog')
    .getByRole('button', { name: 'Delete', exact: true })
    .click();
  const alert = detail.locator('.jp-mlp-RunDetail-error[role="alert"]');
  await expect(alert).toContainText(`belongs to ${OTHER}`);
  if (!session.serverRefuses) {
    await expect(alert).toHaveText(refusal(id, 'delete'));
  }
  await expect(detail.locator('img, b')).toHaveCount(0);
  // Still there: the list has it, the view too.
  await expect(detail.getByRole('heading', { level: 1 })).toHaveText(
    'baseline-other'
  );

  // From the panel's row: the pin is undone and the refusal is shown in the panel.
  const running = seeded.runs['long-other'];
  await refuseUnlessServerDoes(page, session, running, 'PATCH', 'pin');
  const panel = await openSidebar(page);
  const row = runRow(panel, 'long-other');
  await row.getByRole('button', { name: 'Pin' }).click();
  await expect(panel.locator('.jp-mlp-RunsPanel-error')).toContainText(
    `belongs to ${OTHER}`
  );
  await expect(row).not.toHaveClass(/jp-mod-pinned/);
  expect(await rowNames(panel)).toContain('long-other');
});

test('owners in Compare, the sweeps list and view (no Cancel on theirs) and the pipeline editor', async ({
  page,
  tmpPath
}) => {
  const { seeded, me } = await joinTeam(page);
  const panel = await openSidebar(page);
  await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

  // Compare one of mine with one of alice's: each run's header names its owner.
  for (const name of ['baseline-mine', 'baseline-other']) {
    await runRow(panel, name).locator('input[type="checkbox"]').check();
  }
  await panel.getByRole('button', { name: 'Compare (2)' }).click();
  const compare = page.locator('.jp-mlp-Compare[data-runs="2"]');
  const owners = compare.locator(
    '.jp-mlp-Compare-params .jp-mlp-Compare-owner'
  );
  await expect(owners).toHaveText([me, OTHER]);
  await expect(owners.nth(1)).toBeInViewport();
  await expect(compare.locator('.jp-mlp-Compare-metrics thead')).toContainText(
    `baseline-other (${OTHER})`
  );
  await page.theme.setDarkTheme();
  expect(await contrast(owners.nth(1))).toBeGreaterThanOrEqual(4.5);
  expect(
    await contrast(panel.locator('.jp-mlp-SweepsList-owner'))
  ).toBeGreaterThanOrEqual(4.5);
  await page.screenshot({ path: test.info().outputPath('compare.png') });
  await page.theme.setLightTheme();

  // The sweeps list names its owner; alice's running sweep has no Cancel for me.
  const sweepRow = panel.locator(
    `.jp-mlp-SweepsList-row[data-sweep-id="${seeded.sweep}"]`
  );
  await expect(sweepRow.locator('.jp-mlp-SweepsList-owner')).toHaveText(OTHER);
  await expectLegible(sweepRow.locator('.jp-mlp-SweepsList-owner'));
  await sweepRow.click();
  const sweep = page.locator(`.jp-mlp-Sweep[data-sweep-id="${seeded.sweep}"]`);
  await expect(sweep.locator('.jp-mlp-Sweep-owner')).toHaveText(OTHER);
  await expect(sweep).toHaveAttribute('data-status', 'running');
  await expect(sweep.getByRole('button', { name: 'Cancel sweep' })).toHaveCount(
    0
  );
  await page.screenshot({ path: test.info().outputPath('sweep.png') });

  // The pipeline editor: pinned runs name their owners; alice's is used like mine.
  const file = `${tmpPath}/team.mlpipe`;
  const historyRoute = api('pipelines/runs');
  const theirRun = {
    id: 'aa11bb22cc33',
    name: 'team',
    path: file,
    version: 'abcdef0123456789',
    status: 'running',
    owner: OTHER,
    created_at: Date.now() / 1000 - 60
  };
  const myRun = { ...theirRun, id: 'dd44ee55ff66', owner: me };
  await page.route(historyRoute, route =>
    route.fulfill({ json: { runs: [theirRun, myRun] } })
  );
  for (const run of [theirRun, myRun]) {
    await page.route(api(`pipelines/runs/${run.id}`), route =>
      route.fulfill({ json: { ...run, spec: null, stages: {} } })
    );
  }
  await page.route(api(`pipelines/runs/${myRun.id}/cancel`), route =>
    route.fulfill({
      status: 403,
      json: {
        message: `pipeline run ${myRun.id.slice(0, 4)} is cancelled only by its owner`
      }
    })
  );
  await page.contents.uploadContent(
    JSON.stringify({
      format: 'jupyter-mlp.pipeline',
      version: 1,
      name: 'team',
      stages: {}
    }),
    'text',
    file
  );
  await page.evaluate(
    async ([path, factory]) => {
      await window.jupyterapp.commands.execute('docmanager:open', {
        path,
        factory
      });
    },
    [file, PIPELINE_FACTORY]
  );
  await page.sidebar.close('left');
  const editor = page.locator('.jp-mlp-PipelineDocument:not(.lm-mod-hidden)');
  const palette = editor.locator('.jp-mlp-PipelinePalette');
  const item = palette.locator(
    `.jp-mlp-PipelinePalette-run[data-run="${seeded.runs['baseline-other']}"]`
  );
  await expect(item.locator('.jp-mlp-PipelinePalette-owner')).toHaveText(OTHER);
  await expectLegible(item.locator('.jp-mlp-PipelinePalette-owner'));
  await page.theme.setDarkTheme();
  expect(
    await contrast(item.locator('.jp-mlp-PipelinePalette-owner'))
  ).toBeGreaterThanOrEqual(4.5);
  await page.theme.setLightTheme();
  await expect(
    palette.locator(
      `.jp-mlp-PipelinePalette-run[data-run="${seeded.runs['tuned-mine']}"] .jp-mlp-PipelinePalette-owner`
    )
  ).toHaveText(me);
  await expect(item).toHaveAttribute('draggable', 'true');
  await item
    .getByRole('button', { name: 'Add baseline-other as a stage' })
    .click();
  await expect(
    editor.locator('.jp-mlp-StageNode[data-stage="baseline-other"]')
  ).toHaveCount(1);
  // (It has no notebook snapshot: the editor says so; that message is put away.)
  await editor
    .locator('.jp-mlp-PipelineMessage')
    .getByRole('button', { name: 'Dismiss' })
    .click();

  // Their pipeline run, live: no Cancel run; mine has it, and its refusal reads as text.
  const history = editor.locator('.jp-mlp-PipelineHistory');
  await history.locator(`[data-run="${theirRun.id}"]`).click();
  await expect(editor.locator('.jp-mlp-RunBanner')).toContainText(OTHER);
  await expect(editor.getByRole('button', { name: 'Cancel run' })).toHaveCount(
    0
  );
  await page.screenshot({ path: test.info().outputPath('pipeline.png') });
  await history.locator(`[data-run="${myRun.id}"]`).click();
  await expect(
    history.locator(`[data-run="${myRun.id}"] .jp-mlp-PipelineHistory-owner`)
  ).toHaveText(me);
  const cancel = editor.getByRole('button', { name: 'Cancel run' });
  await expect(cancel).toBeVisible();
  await cancel.click();
  await expect(editor.locator('.jp-mlp-PipelineMessage')).toContainText(
    'is cancelled only by its owner'
  );
});
