"""MKDT (Joshi, Ni, Mirzasoleiman, *Dataset Distillation via Knowledge Distillation: Towards Efficient
Self-Supervised Pre-Training of Deep Networks*, ICLR 2025): trajectory matching of students distilled from the teacher.

    config.py      MKDTConfig: MKDT's CIFAR-100 (2%) settings as defaults
    matching.py    the inner SGD unrolled functionally (`torch.func`) and the normalised parameter-matching loss
    memory.py      the unrolled graph's peak memory, estimated before step 1
    distiller.py   MKDTDistiller: per iteration an expert segment, the unroll, momentum SGD on X_s, Y_s, step size

The experts come from `hf-ssdd trajectories` (`hf_ssdd/trajectories.py`); the set starts from their high-loss images.
"""
