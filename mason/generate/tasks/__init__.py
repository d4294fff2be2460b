"""Task generators, one module per task type. The registry lives in `mason.generate.generators`."""
