"""Parameter sweeps: grid expansion, local process pool or Dask execution, resumable results."""
