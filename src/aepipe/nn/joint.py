"""Whole-stack autoencoders for the joint and layer_matching pretraining modes.

Both are built from the same blocks as greedy pretraining (encoders up, then
decoders down in reverse), so the weights they leave behind load into the
same per-layer encoders the classifier stacks.
"""

from __future__ import annotations

import keras

from .blocks import Block
from .layers import InputNoise, MatchingLoss, StopGradient


def build_joint(blocks: list[Block], corrupt: bool = True, input_noise: float = 0.0) -> keras.Model:
    """input -> (noise_i -> encoder_i) for every block -> decoders in reverse.
    ``corrupt=False``: none of the blocks' own noise (the unrolled autoencoder).
    ``input_noise``: unclipped Gaussian noise on the inputs at training time (the
    net reads it, nothing reconstructs it), ``unroll.input_noise``'s regulariser."""
    inputs = keras.Input(blocks[0].input_shape, name="input")
    x = InputNoise("gaussian", stddev=input_noise, clip=False, name="input_noise")(inputs) if input_noise else inputs
    for block in blocks:
        x = block.encoder(block.corrupt(x) if corrupt else x)
    for block in reversed(blocks):
        x = block.decoder(x)
    return keras.Model(inputs, x, name="joint_autoencoder")


def build_layer_matching(blocks: list[Block], weight: float = 1.0) -> keras.Model:
    """The joint autoencoder plus, for each depth i >= 1, ``weight * loss_i(e_i, d_i)``
    where e_i is the input of block i and d_i what blocks i.. reconstruct of it
    (up through every encoder above, back down through their decoders).

    With ``stop_gradient`` on block i, e_i enters its term as a constant, so the
    term trains blocks i and above only: block i learns from the codes below
    like a greedy stage would, while the whole model trains at once.
    """
    inputs = keras.Input(blocks[0].input_shape, name="input")
    codes = [inputs]
    for block in blocks:
        codes.append(block.encoder(block.corrupt(codes[-1])))
    out = codes[-1]
    for block in reversed(blocks):
        out = block.decoder(out)
    for i in range(1, len(blocks)):
        e_i = codes[i]
        if blocks[i].spec.stop_gradient:
            e_i = StopGradient(name=f"stop_gradient_{i}")(e_i)
        d_i = e_i
        for block in blocks[i:]:
            d_i = block.encoder(d_i)
        for block in reversed(blocks[i:]):
            d_i = block.decoder(d_i)
        out = MatchingLoss(blocks[i].loss, weight, name=f"match_{i}")([e_i, d_i, out])
    return keras.Model(inputs, out, name="layer_matching_autoencoder")


BUILDERS = {"joint": lambda blocks, spec: build_joint(blocks),
            "layer_matching": lambda blocks, spec: build_layer_matching(blocks, spec.pretrain.match_weight)}
