"""Train and ship the digits feature networks: python -m analysis.train_features

Writes analysis/weights/{digits-eval,digits-train}.safetensors with their test accuracy
and training settings in the file's metadata.
"""

from __future__ import annotations

import time

from analysis.features import _weights_path, accuracy, save_digits_net, train_digits_net
from models.data import digits

SEEDS = {"digits-eval": 1, "digits-train": 2}


def main() -> None:
    train, test = digits("train"), digits("test")
    for name, seed in SEEDS.items():
        t0 = time.perf_counter()
        net = train_digits_net(train.images, train.labels, seed=seed)
        acc = accuracy(net, test.images, test.labels)
        info = {"seed": seed, "epochs": 60, "test_accuracy": acc, "split": "digits seed 0, test 25%",
                "command": "python -m analysis.train_features"}
        save_digits_net(net, _weights_path(name), info=info)
        print(f"{name}: test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
