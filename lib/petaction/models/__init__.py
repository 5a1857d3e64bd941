"""Models: the OpenMMLab glue, this project's registered models, configs, pretrained weights."""
