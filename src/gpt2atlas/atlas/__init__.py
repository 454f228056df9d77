"""The atlas: what every MLP neuron and attention head does across a corpus, scanned once and kept in SQLite."""
