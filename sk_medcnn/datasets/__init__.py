"""Data sets: MedMNIST files and synthetic lesion phantoms."""

from ._medmnist import fetch_medmnist, load_medmnist
from ._phantoms import make_lesion_phantoms

__all__ = ["fetch_medmnist", "load_medmnist", "make_lesion_phantoms"]
