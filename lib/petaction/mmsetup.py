"""What every config's ``custom_imports`` names: mmengine can only import a module by name, so
importing this one runs petaction.setup() (for mmaction2's own tools and the DDP workers)."""
from . import setup

setup()
