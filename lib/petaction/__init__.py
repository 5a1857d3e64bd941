"""petaction: a reproducible study of video models for pet behaviour recognition.

The package holds every piece of logic; the notebooks under ``notebooks/`` call it. Its folders
are the pipeline's stages, each importing only those below it (import-linter contracts in
pyproject.toml, checked by tests/test_layers.py):

    __main__, study, schedule, params     the study orchestration and parameter layering
    deploy | reporting                    inference/export | the report
    evaluation                            scores, tests, cost
    training                              mmengine's Runner, DDP, hooks
    models                                OpenMMLab glue, configs, pretrained weights
    data                                  AI-Hub format, synthetic set, preparation
    core                                  paths, provenance, errors

Call ``petaction.setup()`` once before using the models (the CLI, the notebooks, the tests and
every config's ``custom_imports`` do).
"""
__version__ = "0.1.0"

_done = False


def setup() -> None:
    """Make the pinned OpenMMLab packages work and register this project's parts; idempotent.

    The one place that patches: mmaction2 1.2.0's missing DRN module gets a stand-in, mmengine's
    checkpoint loader gets the trust rule and its local file backend atomic writes
    (models.checkpoints), and our models, initialiser,
    hooks, datasets and metrics enter the mmaction2/mmengine registries."""
    global _done
    if _done:
        return
    from .models import checkpoints, mmcompat
    mmcompat.install_drn_standin()   # before anything imports mmaction.models
    checkpoints.register_loader()
    checkpoints.register_atomic_backend()   # checkpoints written whole or not at all
    from .models import mmmodels, pretrained  # noqa: F401  (registers the backbone adapters)
    pretrained.register()
    from .training import detection, mmhooks  # noqa: F401  (registers the box dataset/metric, the hooks)
    _done = True
