/**
 * The first ten minutes of a new user (issue 13): the shipped example opens readable, runs from
 * the terminal show in the editor, notebooks open unmodified, the runs list tells runs apart and
 * keeps its clock, dialogs are laid out as JupyterLab's, and the dark theme stays readable.
 * Screenshots of the example pipeline (light and dark) go to docs/.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import {
  codeCell,
  contrast,
  docsPath,
  expectWhollyOnCanvas,
  MLP_HOME,
  notebookJson,
  openSidebar,
  REPO,
  runRow,
  store
} from './helpers';

const EXAMPLES = path.join(REPO, 'examples');
const EXAMPLE_FILES = [
  'digits.mlpipe',
  'prepare_digits.ipynb',
  'train_digits.ipynb',
  'evaluate_digits.ipynb'
];

function editor(page: Page): Locator {
  return page.locator('.jp-mlp-PipelineDocument:not(.lm-mod-hidden)');
}

function stage(page: Page, name: string): Locator {
  return editor(page).locator(`.jp-mlp-StageNode[data-stage="${name}"]`);
}

/** The canvas's `translate(...) scale(...)` (React Flow's viewport transform). */
async function transform(page: Page): Promise<string> {
  return editor(page)
    .locator('.react-flow__viewport')
    .evaluate(node => (node as HTMLElement).style.transform);
}

/** The canvas's zoom. */
async function zoom(page: Page): Promise<number> {
  const match = /scale\(([\d.]+)\)/.exec(await transform(page));
  return match ? Number(match[1]) : 0;
}

async function uploadExamples(
  page: IJupyterLabPageFixture,
  dir: string
): Promise<void> {
  for (const name of EXAMPLE_FILES) {
    await page.contents.uploadFile(path.join(EXAMPLES, name), `${dir}/${name}`);
  }
}

/** The server's root folder on disk (the page config says it). */
async function serverRoot(page: Page): Promise<string> {
  const root = await page.evaluate(
    () =>
      JSON.parse(
        document.getElementById('jupyter-config-data')?.textContent ?? '{}'
      ).serverRoot as string
  );
  return root.startsWith('~')
    ? path.join(process.env.HOME ?? '/root', root.slice(1))
    : root;
}

test.describe('the shipped example pipeline', () => {
  test('digits.mlpipe opens with its stages readable and fitted', async ({
    page,
    tmpPath
  }) => {
    await uploadExamples(page, tmpPath);
    await page.filebrowser.openDirectory(tmpPath);
    await page
      .locator('.jp-DirListing-item', { hasText: 'digits.mlpipe' })
      .dblclick();
    for (const name of ['prepare', 'train', 'evaluate']) {
      const node = stage(page, name);
      await expectWhollyOnCanvas(node);
      await expect
        .poll(async () => (await node.boundingBox())?.width ?? 0)
        .toBeGreaterThanOrEqual(120);
    }
    await expect(
      editor(page).locator('.jp-mlp-PipelineCanvas')
    ).toHaveAttribute('data-fitted', 'true');
    // Readable text: a stage name at least 10 px high on screen.
    const name = stage(page, 'train').locator('.jp-mlp-StageNode-name');
    await expect
      .poll(async () => (await name.boundingBox())?.height ?? 0)
      .toBeGreaterThanOrEqual(10);
    await page.screenshot({ path: docsPath('pipeline.png') });

    // Fit view with the Runs column open on this narrow editor keeps the text readable (a zoom of
    // 0.6 or more, not 0.32), showing the pipeline from its start.
    const canvas = editor(page).locator('.jp-mlp-PipelineCanvas');
    const runsToggle = editor(page).getByRole('button', {
      name: 'Runs',
      exact: true
    });
    const pan = async () => {
      const box = (await canvas.boundingBox())!;
      await page.mouse.move(box.x + 30, box.y + box.height - 30);
      await page.mouse.down();
      await page.mouse.move(box.x + 90, box.y + box.height - 50, {
        steps: 5
      });
      await page.mouse.up();
    };
    await runsToggle.click();
    await pan(); // by hand: the view no longer follows the editor's size ...
    await editor(page).getByRole('button', { name: 'Fit view' }).click();
    await expect.poll(() => zoom(page)).toBeGreaterThanOrEqual(0.6);
    const narrow = await zoom(page);
    await expect(stage(page, 'prepare')).toBeInViewport();
    await expect
      .poll(async () => (await name.boundingBox())?.height ?? 0)
      .toBeGreaterThanOrEqual(9);
    // ... until Fit view: widening the editor (the file browser folds away) fits it again, the
    // whole pipeline larger, in the middle of the canvas rather than small in a corner.
    await page.sidebar.close('left');
    for (const node of ['prepare', 'train', 'evaluate']) {
      await expectWhollyOnCanvas(stage(page, node));
    }
    await expect.poll(() => zoom(page)).toBeGreaterThan(narrow);
    await expect
      .poll(async () => {
        const area = (await canvas.boundingBox())!;
        const train = (await stage(page, 'train').boundingBox())!;
        return (
          Math.abs(train.x + train.width / 2 - (area.x + area.width / 2)) /
          area.width
        );
      })
      .toBeLessThan(0.1);
    // Panned by hand again, the view stays where the user put it when the canvas changes size.
    await pan();
    const moved = await transform(page);
    await runsToggle.click();
    await expect(
      editor(page).locator('.jp-mlp-PipelineEditor-left')
    ).toBeHidden();
    await page.waitForTimeout(300);
    expect(await transform(page)).toBe(moved);
  });

  test('example notebooks are not modified right after opening', async ({
    page,
    tmpPath
  }) => {
    // The examples carry the metadata JupyterLab writes when the kernel connects (kernelspec,
    // language_info). Only the Python version is the machine's: JupyterLab marks any notebook
    // saved under another Python as modified, so the copies take this machine's version.
    const version = execFileSync(
      'python3',
      ['-c', 'import platform; print(platform.python_version())'],
      { encoding: 'utf-8' }
    ).trim();
    for (const name of EXAMPLE_FILES.filter(n => n.endsWith('.ipynb'))) {
      const nb = JSON.parse(
        fs.readFileSync(path.join(EXAMPLES, name), 'utf-8')
      );
      nb.metadata.language_info.version = version;
      await page.contents.uploadContent(
        JSON.stringify(nb, null, 1) + '\n',
        'text',
        `${tmpPath}/${name}`
      );
      await page.filebrowser.open(`${tmpPath}/${name}`);
      // What could make it dirty has happened: the kernel's language_info reached the model
      // and our toolbar button rendered.
      await expect
        .poll(() =>
          page.evaluate(async () => {
            const panel = (window as any).jupyterapp.shell.currentWidget;
            const kernel = panel?.sessionContext?.session?.kernel;
            if (!kernel) {
              return null;
            }
            await kernel.spec; // the panel writes kernelspec from it
            const info = await kernel.info; // and language_info from this
            return info.language_info.version;
          })
        )
        .toBe(version);
      await expect(
        page.locator(
          '.jp-NotebookPanel-toolbar [data-jp-item-name="jupyter-mlp-track"]'
        )
      ).toBeVisible();
      const tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
        hasText: name
      });
      await expect(tab).not.toHaveClass(/jp-mod-dirty/);
      await page.activity.closePanel(name);
    }
  });
});

test.describe('pipeline runs from the terminal', () => {
  test.setTimeout(240_000);

  test('a run from the command line shows in the editor history; dark theme contrast', async ({
    page,
    tmpPath
  }) => {
    const dir = `${tmpPath}/cli`;
    const nb = (cells: string[]) =>
      notebookJson(
        cells.map((source, i) =>
          codeCell(source, i === 0 ? ['parameters'] : [])
        )
      );
    await page.contents.uploadContent(
      nb([
        'n = 1',
        "%load_ext jupyter_mlp\n%mlp_track one\nimport jupyter_mlp as mlp\nmlp.output('x', n + 1)",
        '%mlp_track stop'
      ]),
      'text',
      `${dir}/one.ipynb`
    );
    const spec = {
      format: 'jupyter-mlp.pipeline',
      version: 1,
      name: 'cli',
      stages: {
        one: {
          template: { notebook: 'one.ipynb' },
          parameters: { n: 2 },
          position: { x: 0, y: 0 }
        },
        two: {
          template: { notebook: 'one.ipynb' },
          parameters: { n: '${one.outputs.x}' },
          position: { x: 320, y: 0 }
        }
      }
    };
    await page.contents.uploadContent(
      JSON.stringify(spec),
      'text',
      `${dir}/cli.mlpipe`
    );
    // As README says: from the folder above, the path typed as it is.
    const root = await serverRoot(page);
    const cwd = path.join(root, tmpPath);
    execFileSync(
      process.env.MLP_JUPYTER || 'jupyter',
      ['mlp', 'pipeline', 'run', 'cli/cli.mlpipe'],
      {
        cwd,
        env: { ...process.env, MLP_HOME },
        encoding: 'utf-8',
        timeout: 180_000
      }
    );

    await page.filebrowser.open(`${dir}/cli.mlpipe`);
    // With the file browser open the editor is narrow: the side columns start closed, so the
    // canvas keeps its room; the Runs toggle shows pinned runs and this pipeline's history.
    const runsToggle = editor(page).getByRole('button', {
      name: 'Runs',
      exact: true
    });
    await expect(runsToggle).toHaveAttribute('aria-pressed', 'false');
    await runsToggle.click();
    const history = editor(page).locator('.jp-mlp-PipelineHistory-run');
    await expect(history.first()).toBeInViewport();
    await expect(history).toHaveCount(1, { timeout: 20_000 });
    await expect(history.first()).toContainText('succeeded');
    await history.first().click();
    await expect(history.first()).toHaveAttribute('aria-pressed', 'true');
    await expect(stage(page, 'one')).toHaveAttribute(
      'data-status',
      'succeeded'
    );

    await expect(stage(page, 'two')).toHaveAttribute(
      'data-status',
      'succeeded'
    );

    await page.theme.setDarkTheme();
    expect(await contrast(history.first())).toBeGreaterThanOrEqual(4.5);
    // A stage error box in the dark theme: a reference to a stage that does not exist.
    const bad = {
      ...spec,
      name: 'bad',
      stages: {
        ...spec.stages,
        two: { ...spec.stages.two, parameters: { n: '${ghost.outputs.x}' } }
      }
    };
    await page.contents.uploadContent(
      JSON.stringify(bad),
      'text',
      `${dir}/bad.mlpipe`
    );
    await page.filebrowser.open(`${dir}/bad.mlpipe`);
    const box = stage(page, 'two').locator(
      '.jp-mlp-StageNode-issue[data-level="error"]'
    );
    await expect(box.first()).toBeVisible({ timeout: 15_000 });
    expect(await contrast(box.first())).toBeGreaterThanOrEqual(4.5);
  });
});

test.describe('the runs list', () => {
  test.beforeEach(() => {
    store('clear');
  });

  test('kind, stage and parent columns; a live clock; idle kernels; names readable', async ({
    page
  }) => {
    const ids = JSON.parse(store('mixed')) as Record<string, string>;
    const panel = await openSidebar(page);
    await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);

    // At the default sidebar width the names keep room to be read, with a tooltip.
    const name = panel
      .locator(`[data-run-id="${ids.rerun}"] .jp-mlp-RunTable-name`)
      .first();
    expect((await name.boundingBox())!.width).toBeGreaterThanOrEqual(110);
    await expect(name.locator('.jp-mlp-RunTable-text')).toHaveAttribute(
      'title',
      new RegExp(ids.rerun)
    );

    // Durations formatted right: 119.6 s is "2m 0s".
    const row = (key: string) => panel.locator(`[data-run-id="${ids[key]}"]`);
    await panel.getByText('Columns').click();
    await panel.getByRole('checkbox', { name: 'Parent' }).check();
    await panel.getByText('Columns').click();
    const widen = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle');
    const box = (await widen.first().boundingBox())!;
    await page.mouse.move(box.x + 1, box.y + 200);
    await page.mouse.down();
    await page.mouse.move(box.x + 400, box.y + 200, { steps: 5 });
    await page.mouse.up();
    await expect(row('rerun').locator('.jp-mlp-RunTable-duration')).toHaveText(
      '2m 0s'
    );
    await expect(row('rerun').locator('.jp-mlp-RunTable-kind')).toHaveText(
      'job'
    );
    await expect(row('rerun').locator('.jp-mlp-RunTable-parent')).toHaveText(
      'train_digits'
    );
    await expect(row('stage').locator('.jp-mlp-RunTable-stage')).toHaveText(
      'evaluate'
    );
    // With no stage run listed, the empty Stage column gives its room to the names...
    const stageHeader = panel.getByRole('columnheader', {
      name: 'Stage',
      exact: true
    });
    await expect(stageHeader).toHaveCount(1);
    const nameWidth = async () =>
      (await panel.getByRole('columnheader', { name: 'Name' }).boundingBox())!
        .width;
    const withStage = await nameWidth();
    const filter = panel.getByLabel('Filter runs');
    await filter.fill('stage = null');
    await expect(row('stage')).toHaveCount(0);
    await expect(stageHeader).toHaveCount(0);
    expect(await nameWidth()).toBeGreaterThan(withStage);
    // ... unless the user asks for it in the Columns menu.
    await panel.getByText('Columns').click();
    await panel.getByRole('checkbox', { name: 'Stage' }).check();
    await panel.getByText('Columns').click();
    await expect(stageHeader).toHaveCount(1);
    await filter.fill('');
    await expect(panel.locator('.jp-mlp-RunTable-row')).toHaveCount(4);
    // The idle kernel reads idle, and its Time is the time in cells (5 s), not 20 min.
    await expect(row('idle').locator('.jp-mlp-Status')).toHaveText('idle');
    await expect(row('idle').locator('.jp-mlp-RunTable-duration')).toHaveText(
      '5.0 s'
    );
    await expect(row('busy').locator('.jp-mlp-Status')).toHaveText('running');
    // The clock ticks without any data change: the busy run's Age moves on.
    const age = row('busy').locator('.jp-mlp-RunTable-created');
    const before = await age.innerText();
    await expect
      .poll(() => age.innerText(), { timeout: 8000 })
      .not.toBe(before);
    await page.screenshot({ path: docsPath('panel.png') });
  });

  test('a kernel quiet for two minutes reads running; idle after five, as the server says', async ({
    page
  }) => {
    const ids = JSON.parse(store('mixed')) as Record<string, string>;
    // The busy kernel's last activity moved 2 minutes back, the idle one's to 5 min 10 s back.
    const quiet: Record<string, number> = {
      [ids.busy]: 120,
      [ids.idle]: 310
    };
    await page.route(/\/mlp\/api\/runs\?/, async route => {
      const response = await route.fetch();
      const body = await response.json();
      const now = Date.now() / 1000;
      for (const run of body.runs ?? []) {
        if (run.id in quiet) {
          run.last_activity_at = now - quiet[run.id];
        }
      }
      await route.fulfill({ response, json: body });
    });
    const panel = await openSidebar(page);
    const row = (key: string) => panel.locator(`[data-run-id="${ids[key]}"]`);
    await expect(row('idle').locator('.jp-mlp-Status')).toHaveText('idle');
    await expect(row('busy').locator('.jp-mlp-Status')).toHaveText('running');
  });

  test("a misspelt metric in a filter or the sort gets the server's hint", async ({
    page
  }) => {
    store('mixed');
    const panel = await openSidebar(page);
    const rows = panel.locator('.jp-mlp-RunTable-row');
    const table = panel.locator('.jp-mlp-RunTable');
    const hint = panel.locator('.jp-mlp-Filter-hint');
    const filter = panel.getByLabel('Filter runs');
    await expect(rows).toHaveCount(4);
    await expect(hint).toHaveCount(0);

    // The filter matched nothing: the server names the field no run has, and a close one.
    await filter.fill('metrics.acuracy > 0.5');
    await expect(panel.getByText('No runs match this filter.')).toBeVisible();
    await expect(hint).toHaveCount(1);
    await expect(hint).toHaveText(
      'No run has metrics.acuracy; did you mean metrics.acc? Use metrics.acc'
    );
    await expect(hint).toHaveAttribute('data-field', 'metrics.acuracy');
    await expect(hint).toBeInViewport();
    // The suggestion takes the misspelt field's place in the filter.
    await hint.getByRole('button', { name: 'Use metrics.acc' }).click();
    await expect(filter).toHaveValue('metrics.acc > 0.5');
    await expect(rows).toHaveCount(4);
    await expect(hint).toHaveCount(0);

    // One hint a field, in the filter's order.
    await filter.fill('params.epoch > 3 and metrics.acuracy > 0.5');
    await expect(hint).toHaveText([
      'No run has params.epoch; did you mean params.epochs? Use params.epochs',
      'No run has metrics.acuracy; did you mean metrics.acc? Use metrics.acc'
    ]);
    // Another filter that matches nothing for another reason: no stale hint.
    await filter.fill('metrics.acc > 5');
    await expect(panel.getByText('No runs match this filter.')).toBeVisible();
    await expect(table).toHaveCount(0);
    await expect(hint).toHaveCount(0);
    await filter.fill('');
    await expect(rows).toHaveCount(4);

    // The sort: a metric column the settings name but no run has; the rows stay, with the hint.
    const setColumns = (columns: string[]) =>
      page.evaluate(async columns => {
        const registry = await window.galata.getPlugin(
          '@jupyterlab/apputils-extension:settings'
        );
        await registry!.set('jupyter-mlp:plugin', 'metricColumns', columns);
      }, columns);
    await setColumns(['acc', 'acuracy']);
    try {
      const header = panel.getByRole('columnheader', {
        name: 'acuracy',
        exact: true
      });
      await header.getByRole('button').click();
      await expect(table).toHaveAttribute('data-sort', '-metrics.acuracy');
      await expect(rows).toHaveCount(4);
      await expect(hint).toHaveCount(1);
      await expect(hint).toHaveText(
        'No run has metrics.acuracy; did you mean metrics.acc? Use metrics.acc'
      );
      await expect(hint).toBeInViewport();
      // Readable in the dark theme, the message and its button.
      await page.theme.setDarkTheme();
      expect(await contrast(hint)).toBeGreaterThanOrEqual(4.5);
      const use = hint.getByRole('button', { name: 'Use metrics.acc' });
      expect(await contrast(use)).toBeGreaterThanOrEqual(4.5);
      await use.click();
      await expect(table).toHaveAttribute('data-sort', '-metrics.acc');
      await expect(
        panel.getByRole('columnheader', { name: 'acc', exact: true })
      ).toHaveAttribute('aria-sort', 'descending');
      await expect(hint).toHaveCount(0);
      await expect(rows).toHaveCount(4);
    } finally {
      await page.theme.setLightTheme();
      await setColumns([]);
    }
  });

  test('compare same-named runs: labels apart, headers, dark theme contrast', async ({
    page
  }) => {
    const ids = JSON.parse(store('mixed')) as Record<string, string>;
    const panel = await openSidebar(page);
    await panel
      .locator(`[data-run-id="${ids.idle}"]`)
      .getByRole('checkbox')
      .check();
    await panel
      .locator(`[data-run-id="${ids.rerun}"]`)
      .getByRole('checkbox')
      .check();
    await panel.getByRole('button', { name: 'Compare (2)' }).click();
    const compare = page.locator('.jp-mlp-Compare');
    const heads = compare.locator('.jp-mlp-Compare-metrics thead th');
    await expect(heads).toHaveCount(3);
    const labels = await heads.allInnerTexts();
    expect(labels[1]).not.toEqual(labels[2]);
    expect(labels[1]).toContain(ids.idle.slice(0, 8));
    await expect(compare.locator('.u-legend').first()).toContainText(
      ids.rerun.slice(0, 8)
    );
    // The rerun changed epochs: that row is marked, and stays readable in the dark theme.
    const differ = compare.locator('tr[data-param="epochs"]');
    await expect(differ).toHaveClass(/jp-mlp-mod-differ/);
    await page.theme.setDarkTheme();
    for (const cell of await differ.locator('td, th').all()) {
      expect(await contrast(cell)).toBeGreaterThanOrEqual(4.5);
    }
    expect(await contrast(heads.nth(1))).toBeGreaterThanOrEqual(4.5);
  });

  test('artifacts look like links; the rerun dialog is laid out as JupyterLab dialogs; dask needs a scheduler', async ({
    page
  }) => {
    const ids = JSON.parse(store('mixed')) as Record<string, string>;
    const panel = await openSidebar(page);
    await runRow(panel, 'evaluate_digits').waitFor();
    await panel.locator(`[data-run-id="${ids.rerun}"]`).click();
    const detail = page.locator('.jp-mlp-RunDetail:visible');
    const link = detail.locator('a.jp-mlp-Download');
    await expect(link).toHaveText(/model\.pkl/);
    const style = await link.evaluate(node => {
      const s = getComputedStyle(node);
      return { line: s.textDecorationLine, cursor: s.cursor };
    });
    expect(style.line).toContain('underline');
    expect(style.cursor).toBe('pointer');

    await detail.getByRole('button', { name: 'Rerun…' }).click();
    const dialog = page.locator('.jp-mlp-RerunDialog');
    const cancel = dialog.getByRole('button', { name: 'Cancel' });
    const rerun = dialog.locator('.jp-mlp-Rerun-submit');
    await expect(rerun).toBeVisible();
    const [c, r, d] = await Promise.all([
      cancel.boundingBox(),
      rerun.boundingBox(),
      dialog.locator('.jp-Dialog-content').boundingBox()
    ]);
    expect(Math.abs(c!.y - r!.y)).toBeLessThan(4); // one row
    expect(c!.x + c!.width).toBeLessThanOrEqual(r!.x); // Cancel left of Rerun
    expect(r!.x + r!.width).toBeGreaterThan(d!.x + d!.width - 40); // on the right
    const dask = dialog.locator('select[name="executor"] option[value="dask"]');
    await expect(dask).toBeDisabled();
    // Why, and how to enable it from here (the server's setting, no command-line flag), is the
    // tooltip of the executor choice, not a note under it for a user who only wants local.
    const executor = dialog.locator('select[name="executor"]');
    await expect(executor).toHaveValue('local');
    for (const tip of [dask, executor]) {
      await expect(tip).toHaveAttribute(
        'title',
        /no Dask scheduler is configured \(set c\.MlpApp\.dask_scheduler in the Jupyter server's configuration/
      );
      await expect(tip).not.toHaveAttribute(
        'title',
        /--scheduler|command line/
      );
    }
    await expect(dialog.locator('.jp-mlp-ExecutorNotes')).toHaveCount(0);
    await expect(dialog).not.toContainText('cannot be chosen');
    await cancel.click();
  });
});

test('README screenshots: the example pipeline in the dark theme', async ({
  page,
  tmpPath
}) => {
  await uploadExamples(page, tmpPath);
  await page.theme.setDarkTheme();
  await page.filebrowser.open(`${tmpPath}/digits.mlpipe`);
  await expectWhollyOnCanvas(stage(page, 'evaluate'));
  await expect(editor(page).locator('.jp-mlp-PipelineCanvas')).toHaveAttribute(
    'data-fitted',
    'true'
  );
  await page.screenshot({ path: docsPath('pipeline-dark.png') });
  // The stage names stay readable on the dark canvas.
  const name = stage(page, 'train').locator('.jp-mlp-StageNode-name');
  expect(await contrast(name)).toBeGreaterThanOrEqual(4.5);
});
