"""Solvers that choose the order and the cut of every path."""
