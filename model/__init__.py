"""xnorvit.model: quantizers, blocks, model zoo, data, training, export."""
