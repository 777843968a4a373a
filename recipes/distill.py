"""KRR-ST distillation as an `accelerate launch` entry point (the same code as `hf-ssdd distill`).

    accelerate launch --config_file recipes/accelerate/cpu.yaml recipes/distill.py \
        --config recipes/configs/fashion_mnist.yaml --teacher outputs/teacher --output_dir outputs/distilled
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/distill.py \
        --config recipes/configs/paper/cifar100/distill.yaml --teacher <hub-id-or-folder>
"""

import sys

from hf_ssdd.cli import main

if __name__ == "__main__":
    main(["distill", *sys.argv[1:]])
