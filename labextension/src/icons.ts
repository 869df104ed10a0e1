import { LabIcon } from '@jupyterlab/ui-components';

import pipelineSvgstr from '../style/icons/pipeline.svg';

export const pipelineIcon = new LabIcon({
  name: 'jupyter-mlp:pipeline',
  svgstr: pipelineSvgstr
});
