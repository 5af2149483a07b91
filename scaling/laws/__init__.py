"""Scaling-law fits (power laws, Chinchilla approaches 1-3, bootstrap) and their plots."""
