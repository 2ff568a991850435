"""Analysis of architectures and search results: FLOPs and parameter counts, plots."""
