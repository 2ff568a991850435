"""Benchmarks as stages: library functions behind `nasrec bench <benchmark>`, each taking one
typed run config (`embeddings.embedding_benchmark(EmbeddingBenchRun)`)."""
