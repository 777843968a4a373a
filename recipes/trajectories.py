"""Expert trajectories as an `accelerate launch` entry point (the same code as `hf-ssdd trajectories`).

    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/trajectories.py \
        --config recipes/configs/paper/cifar100/trajectories.yaml
"""

import sys

from hf_ssdd.cli import main

if __name__ == "__main__":
    main(["trajectories", *sys.argv[1:]])
