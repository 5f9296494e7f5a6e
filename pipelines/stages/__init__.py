"""The stages of the per-model graph: export -> build -> verify -> evaluate."""
