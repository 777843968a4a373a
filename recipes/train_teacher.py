"""Barlow Twins teacher training as an `accelerate launch` entry point (the same code as `hf-ssdd train-teacher`).

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/train_teacher.py \
        --config recipes/configs/fashion_mnist_teacher.yaml --output_dir outputs/teacher
"""

import sys

from hf_ssdd.cli import main

if __name__ == "__main__":
    main(["train-teacher", *sys.argv[1:]])
