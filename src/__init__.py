"""Warm-up for recurrent neural networks (Lambrechts et al., 2023), reference implementation."""
