"""Plausible wrong answers to chapter 6's exercise. Each must be rejected by `check`."""

import torch


def ta_counts_thresholds(y):
    return (y > -1 / 3).long() + (y > 1 / 3).long()  # 0 left, 1 stay, 2 right: not ViZDoom's order


def ta_left_right_swapped(y):
    return torch.where(y < -1 / 3, 1, torch.where(y > 1 / 3, 2, 0))


def ta_halves(y):
    return torch.where(y > 0, 1, 2)  # no "stay"


def ta_thresholds_at_half(y):
    return torch.where(y < -0.5, 2, torch.where(y > 0.5, 1, 0))


def ta_rounds_y(y):
    d = torch.round(y).long()  # -1, 0, 1: thresholds at +-1/2
    return torch.where(d < 0, 2, d)


def ta_directions(y):
    return torch.where(y < -1 / 3, -1, torch.where(y > 1 / 3, 1, 0))  # -1/0/+1, not the game's actions


def ta_floats(y):
    return torch.where(y < -1 / 3, 2.0, torch.where(y > 1 / 3, 1.0, 0.0))


def ta_keepdim(y):
    return torch.where(y < -1 / 3, 2, torch.where(y > 1 / 3, 1, 0)).unsqueeze(1)


def ta_thirds_of_zero_one(y):
    return torch.where(y < 1 / 3, 2, torch.where(y > 2 / 3, 1, 0))  # thirds of [0, 1], but y lives in [-1, 1]


def ta_in_place(y):
    left, right = y < -1 / 3, y > 1 / 3
    y.zero_()
    y[left], y[right] = 2, 1
    return y.long()


def ta_python_list(y):
    return [2 if v < -1 / 3 else 1 if v > 1 / 3 else 0 for v in y.tolist()]


def ta_argmax_of_thirds(y):
    scores = torch.stack([-y.abs(), y, -y], dim=1)  # stay, right, left: a one-output C read as three scores
    return scores.argmax(dim=1)


THIRDS_ACTION = {
    "counts the thresholds passed (0 left, 1 stay, 2 right)": ta_counts_thresholds,
    "left and right swapped": ta_left_right_swapped,
    "two halves, no stay": ta_halves,
    "thresholds at +-1/2": ta_thresholds_at_half,
    "rounds y to -1, 0, 1": ta_rounds_y,
    "returns directions -1, 0, +1": ta_directions,
    "returns floats": ta_floats,
    "keeps a (B, 1) shape": ta_keepdim,
    "thirds of [0, 1] instead of [-1, 1]": ta_thirds_of_zero_one,
    "overwrites y in place": ta_in_place,
    "returns a Python list": ta_python_list,
    "argmax of three made-up scores": ta_argmax_of_thirds,
}

WRONG_VERSIONS = {
    "ch06.thirds_action": THIRDS_ACTION,
}
