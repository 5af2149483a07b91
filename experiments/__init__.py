"""Scripts that reproduce paper-style scaling results (see README): each composes sweep configs from
configs/sweeps/, the sweep runner, scaling.laws.fit and scaling.laws.plot; shared pieces in common.py."""
