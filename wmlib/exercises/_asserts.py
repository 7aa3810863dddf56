"""Assertions for exercise tests, with messages written for learners."""

from __future__ import annotations

import numpy as np
import torch


def _digits(n: int) -> str:
    return f"an integer of about {int(abs(n).bit_length() * 0.30103) + 1} digits"


def as_tensor(value, what: str) -> torch.Tensor:
    """The learner's output as a tensor, or an AssertionError saying what it was instead."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray | float | int | np.floating | np.integer):
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise AssertionError(f"{what} is an integer too large for a tensor ({_digits(value)})")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":  # bool, int, unsigned, float
            raise AssertionError(f"{what} should hold numbers, got an array of dtype {array.dtype}")
        return torch.as_tensor(array)
    raise AssertionError(f"{what} should be a torch.Tensor, got {type(value).__name__}")


def as_scalar(value, what: str, hint: str) -> torch.Tensor:
    """The learner's output as a 0-d tensor, or an AssertionError with its shape and `hint` (how to reduce it)."""
    value = as_tensor(value, what)
    if value.numel() != 1:
        raise AssertionError(f"{what} should be one number (a 0-d tensor), got shape {tuple(value.shape)}: {hint}")
    return value.reshape(())


def assert_close(actual, expected, what: str, *, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Same shape, finite where the expected value is finite, and equal within tolerance."""
    expected = torch.as_tensor(expected)
    actual = as_tensor(actual, what)
    if tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    actual = actual.detach().to(torch.float64).cpu()
    expected = expected.detach().to(torch.float64).cpu()
    bad = torch.isnan(actual) & ~torch.isnan(expected)
    if bad.any():
        raise AssertionError(f"{what} contains NaN ({int(bad.sum())} of {actual.numel()} values)")
    bad = torch.isinf(actual) & ~torch.isinf(expected)
    if bad.any():
        raise AssertionError(f"{what} contains inf ({int(bad.sum())} of {actual.numel()} values): "
                             "is something overflowing?")
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True):
        diff = (actual - expected).abs()
        diff = torch.where(torch.isnan(diff), torch.zeros_like(diff), diff)
        i = int(diff.flatten().argmax())
        where = tuple(int(j) for j in np.unravel_index(i, tuple(actual.shape))) if actual.dim() else ()
        at = f"at index {where[0] if len(where) == 1 else where} " if where else ""
        raise AssertionError(
            f"{what} is wrong: {at}you return {actual.flatten()[i].item():.6g}, "
            f"expected {expected.flatten()[i].item():.6g}"
        )


def assert_float_close(actual, expected: float, what: str, *, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """A Python/NumPy/0-d torch number close to `expected`."""
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            raise AssertionError(f"{what} should be a single number, got a tensor of shape {tuple(actual.shape)}")
        actual = actual.item()
    try:
        value = float(actual)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} should be a number, got {type(actual).__name__}") from None
    except OverflowError:
        raise AssertionError(f"{what} is too large to be a float ({_digits(actual)})") from None
    if np.isnan(value):
        raise AssertionError(f"{what} is NaN")
    if not np.isclose(value, expected, rtol=rtol, atol=atol):
        raise AssertionError(f"{what} is {value:.6g}, expected {expected:.6g}")


def assert_inputs_unchanged(call, inputs: dict[str, torch.Tensor]) -> None:
    """Run call() (the learner's function on these tensors) and fail if it changed any of them in place."""
    copies = {name: t.clone() for name, t in inputs.items()}
    call()
    for name, before in copies.items():
        if not torch.equal(before, inputs[name]):
            raise AssertionError(f"your function changed its input {name} in place; compute new tensors instead")
