// Playwright configuration for the Galata tests, using Debian's Chromium (no browser download).
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.MLP_UI_PORT || '8899';

module.exports = {
  ...baseConfig,
  // The html report must never open a browser: run.sh runs unattended.
  reporter: [['list'], ['html', { open: 'never' }]],
  workers: 1,
  use: {
    ...baseConfig.use,
    baseURL: `http://localhost:${port}`,
    // Galata's default video needs Playwright's own ffmpeg download.
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: 'jupyter lab --config jupyter_server_test_config.py',
    url: `http://localhost:${port}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false
  }
};
