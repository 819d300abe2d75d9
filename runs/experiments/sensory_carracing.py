"""Experiment ``sensory-carracing`` (Tang & Ha 2021's headline task): an AttentionNeuron
cloned to drive Gymnasium's ``CarRacing-v3`` from its screen cut into 36 patches that
arrive in any order, tested on backgrounds it never saw; a CNN on the same screen is the
baseline.

World: :class:`colonylab.envs.classic.carracing.CarRacingWorld` -- cars stepped by
``--workers`` processes, the 96 x 96 screen average-pooled to 48 x 48 and cut into
8 x 8 patches (``--patch 8``: 36 patches of 192 values), actions (steer, accel) repeated
for 2 frames.

Teacher: a scripted driver that reads the track polyline and the car's true state
(:func:`~colonylab.envs.classic.carracing.scripted_action`: steer toward a look-ahead
point, yaw-rate damped; throttle/brake to a speed set by the curvature ahead).

Students, both cloned from it with DAgger on the normal (unshuffled, green) screen
(:func:`~colonylab.collective_ml.trainers.clone.behaviour_clone`: MSE to the teacher's
(steer, accel) on the states the student visits, the teacher driving with probability
``0.5 ** iteration``; shuffled minibatches of single frames):

- AttentionNeuron (``--attention grid``,
  :class:`~colonylab.agents.sensory.AttentionGridPolicy`): the paper's vision layer --
  each patch's key from its content alone (an MLP), its value 16 learned features,
  8 x 8 FIXED 2-D positional queries, so the attention writes an 8 x 8 latent image
  that two convolutions and an MLP read. No patch index enters it: it needs no
  shuffling in training. Cloned with DART noise (``--teacher-noise 0.3`` on the
  teacher's executed actions), 24 cars x 600 frames per iteration, the best of each
  run's iterations kept by a validation on 4 other tracks. Shipped in two stages:
  ``sensory_carracing_attention_stage1.pt`` (``colony train sensory-carracing --agents
  attention``: 8 iterations, 19 min) and ``sensory_carracing_attention.pt`` (``colony
  train sensory-carracing --agents attention --bc-iterations 5 --init
  runs/checkpoints/sensory_carracing_attention_stage1.pt --seed 1``: 5 more, 11 min;
  best iteration 3). ``--attention neuron`` is the first try (1-D queries over a
  feed-forward :class:`~colonylab.agents.sensory.AttentionNeuronPolicy`; it never
  learned to steer: -22.6);
- CNN (:class:`~colonylab.agents.patch_cnn.PatchCNNPolicy`): the patches put back on
  their grid, two strided convolutions and an MLP head (the shipped one was cloned on
  4 x 4 patches of the same screen; it re-assembles any square patches).

``colony eval sensory-carracing`` scores the teacher and the students (the AttentionNeuron +
filter when its checkpoint is there) unshuffled,
shuffled at reset, and on each new background (natural images pasted over the grass:
``skimage.data``'s astronaut, coffee and chelsea since session 25; matplotlib's
grace_hopper and scikit-learn's china and flower added in session 29, chosen and
committed before the filter they test was trained; AttentionNeuron shuffled, CNN
unshuffled so that only the background changes).
Rows carry ``of_teacher`` (mean / the teacher's mean) and, on backgrounds,
``of_original`` (mean / the same agent's unshuffled mean on the green screen). The
teacher reads the track, not the screen: its rows under shuffles and backgrounds are
its unshuffled episodes (noted).

Budgets (stated, the machine is a shared CPU): evaluation episodes ``--eval-frames 500``
frames, 5 of them (the same tracks for every agent and condition); CarRacing's standard
is 1000.

Result of the shipped checkpoints (``colony eval sensory-carracing``: 5 tracks of 500
frames, mean +- sd; the teacher on 10 tracks of the standard 1000 frames scores
791.0 +- 186.6, with one spin-out at 256):

=======================  ==============  ===============  ===============  ===============
condition                teacher         AttentionNeuron  AN + filter      CNN
=======================  ==============  ===============  ===============  ===============
unshuffled               413.7 +- 59.8   471.7 +- 66.7    460.4 +- 88.5    391.7 +- 136.3
shuffled at reset        (413.7)         452.4 +- 85.3    421.6 +- 128.2   -25.8 +- 11.1
background astronaut     (413.7)         -31.9 +- 1.7     425.2 +- 117.0   -34.4 +- 1.1
background coffee        (413.7)         -30.9 +- 4.3     408.7 +- 95.1    -34.4 +- 1.1
background chelsea       (413.7)         -25.8 +- 4.9     442.6 +- 79.0    -36.2 +- 2.3
background grace_hopper  (413.7)         -31.9 +- 2.7     405.7 +- 130.3   -34.4 +- 1.1
background china         (413.7)         -30.6 +- 3.4     457.7 +- 101.7   -34.4 +- 1.1
background flower        (413.7)         -34.4 +- 1.1     455.0 +- 82.3    -43.8 +- 0.4
=======================  ==============  ===============  ===============  ===============

Session 30, ``sensory_carracing_filtered.pt`` (the column above): two stages on top of
session 29's agent (below; now ``sensory_carracing_filtered_stage4.pt``, the same bytes).
The backgrounds goal (>= 70% of its own unshuffled score on each) is met on all six:
astronaut 92%, coffee 89%, chelsea 96%, grace_hopper 88%, china 99%, flower 99%; shuffled
it drives at 102% of the teacher. On 20 fresh tracks (``colony eval
sensory-carracing --checkpoint runs/checkpoints/sensory_carracing_filtered.pt
--eval-episodes 20 --eval-seed 4048``, after the 5-track result, as information) also
six of six: unshuffled 566.7, shuffled 564.8 (the teacher 480.5), astronaut 563.4 (99%),
coffee 528.9 (93%), chelsea 516.5 (91%), grace_hopper 557.0 (98%), china 556.5 (98%),
flower 553.0 (98%).
On the validation tracks stage 4 lost rocket tracks where its filter left thin grey
streaks of the launch tower (pictures of validation screens only). Refining the filter
alone (2 x 4000 steps, seed 41) moved its output on the grass and the frozen driver fell
(validation grass 148 after one round; stopped). Stage 5 (:func:`filter_stage` with
``--agents filtered``: ``colony train sensory-carracing --agents filtered --method filter
--init runs/checkpoints/sensory_carracing_filtered_stage4.pt --filter-width 32
--filter-dashboard paint --filter-dark 0.3 --filter-lines 0.5 --filter-action 10.0
--consistency-rounds 2 --consistency-steps 3000 --bc-minibatch 32 --workers 1 --seed 43``,
2072 s, round 1 kept) refines stage 4's filter with thin lines and lattices on half of
its training backgrounds (:func:`~colonylab.envs.classic.carracing.thin_lines`) and a
third loss, ``10 x`` the square difference between the frozen driver's actions on the
filtered background screen and on the green screen through stage 4's filter. Stage 6,
``sensory_carracing_filtered.pt``, DAgger-fine-tunes the driver behind it (``colony train
sensory-carracing --agents filtered --init runs/checkpoints/sensory_carracing_filtered_stage5.pt
--filter-width 32 --bc-iterations 5 --train-backgrounds procedural --procedural-share 0.5
--procedural-style rich --workers 1 --seed 46``, 751 s). The choice used validation tracks
only (``colony eval sensory-carracing --checkpoint X --validation True --seed 900
--validate-episodes 8``: 8 grass and 8 ``rocket`` tracks, mean of both): stage 6 505.9
(grass 568.8, rocket 443.0), stage 5 445.6 (409.1, 482.2), stage 4 391.6 (545.9,
237.2); a DAgger stage from stage 4 on training photos and textures (``--procedural-style
mixed``, seed 40) 289.5; a filter refine without the action loss (seed 42) kept its start
(no round beat it in its own validation); one with ``--filter-action 30`` (seed 44) was
stopped after its first round fell below its start. Only stage 6 was then scored on the
test backgrounds.

Session 29, now ``sensory_carracing_filtered_stage4.pt`` (AN + filter, NOT in the paper): a
:class:`~colonylab.agents.patch_filter.PatchFilter` (4 convolutions of 32 channels run on
each patch alone) predicts each pooled pixel's background share and paints it
:data:`~colonylab.envs.classic.carracing.FLAT_GRASS`, in front of the AttentionNeuron.
With it the backgrounds goal was met on 5 of 6 test backgrounds (same 5 x 500 eval:
unshuffled 389.9 +- 108.3, shuffled 408.7 +- 117.8) -- astronaut 364.9 (94%), coffee
285.1 (73%), grace_hopper 378.5 (97%), china 318.0 (82%), flower 362.0 (93%) -- and NOT
on chelsea, 253.8 (65%); shuffled it drove at 99% of the teacher.
On 20 fresh tracks (``colony eval sensory-carracing --checkpoint
runs/checkpoints/sensory_carracing_filtered_stage4.pt --eval-episodes 20 --eval-seed 4048``, run
after the 5-track result, as information) it is 3 of 6: unshuffled 529.8, shuffled
526.6 (the teacher 480.5), astronaut 365.3 (69%), coffee 301.7 (57%), chelsea 284.4
(54%), grace_hopper 448.6 (85%), china 430.1 (81%), flower 439.8 (83%).
Session 28's filter kept black regions (its target kept the dashboard, which is pure
black, so a black background could pass as dashboard): its agent scored unshuffled
423.1, shuffled 385.9, astronaut -28.2 (-7%), coffee 328.0 (78%), chelsea 337.5 (80%).
Session 29's target paints the dashboard's black flat green too (``--filter-dashboard
paint``; the bars stay), and 30% of its training backgrounds are darkened
(``--filter-dark 0.3``). This fix came from looking at astronaut, a test image, so three
fresh held-out backgrounds were added first (above). Stage 1, ``--method filter``
(:func:`filter_stage`): ``colony train sensory-carracing --agents attention --method
filter --init runs/checkpoints/sensory_carracing_attention.pt --filter-width 32
--filter-dashboard paint --filter-dark 0.3 --consistency-rounds 1 --consistency-steps 3000
--consistency-lr 0.002 --bc-minibatch 32 --validate-episodes 0 --workers 1 --seed 22``
(718 s; square error 0.0026, share cross-entropy 0.111),
``sensory_carracing_filtered_stage1.pt``. Then the AttentionNeuron is DAgger-fine-tuned
behind the frozen filter (``--agents filtered``, :func:`_clone`; the replay keeps filtered
patches) in three stages of 5 iterations, each ``--init`` the last: ``colony train
sensory-carracing --agents filtered --init runs/checkpoints/sensory_carracing_filtered_stage1.pt
--filter-width 32 --bc-iterations 5 --train-backgrounds procedural --procedural-share 0.5
--procedural-style rich --workers 1 --seed 32`` (stage 2, 724 s), the same from
``..._stage2.pt`` with ``--seed 33`` (stage 3, 736 s) and from ``..._stage3.pt`` with
``--seed 35`` (the shipped stage 4, 840 s). The choice used validation tracks only: every
candidate was scored on the same 8 grass and 8 ``rocket`` tracks (seed base 777,900, no
training run's: ``_background_validation(Config(seed=900, validate_episodes=8))``), mean
of both: stage 2 252.6, stage 3 338.6, stage 4 391.6 (grass 545.9,
rocket 237.2); a sibling stage 3 (``--seed 34``) 240.9; the filter of width 24 (seed 21,
its stage 2 seed 31) 160.1; session 28's shipped agent 270.0 (grass 532.4, rocket 7.7).
Stage 3 was scored on the test backgrounds before stage 4 had finished; the rule, fixed
before, was to ship the best on validation, so stage 4 replaced it: stage 3 scored
unshuffled 387.6, shuffled 385.7, backgrounds astronaut 338.7 (87%), coffee 396.5
(102%), chelsea 293.6 (76%), grace_hopper 303.0 (78%), china 293.4 (76%), flower 357.4
(92%). After stage 4's test scores, two stage-5 runs from it (``--init
runs/checkpoints/sensory_carracing_filtered.pt``, seeds 36 and 37) scored 348.0 and 306.2
on the validation tracks, below stage 4: not kept, never scored on the tests. Stage 2
alone: 333.2 / 354.3, 49.6 (15%) / 276.2 (83%) / 185.1 (56%) / 325.1
(98%) / 419.7 (126%) / 362.8 (109%). The figure's last rows (session 30's filter since):
every background comes out nearly all flat green (astronaut keeps part of its helmet's
white ring, and a few specks stay).

Shuffled, the AttentionNeuron drives at 109% of the teacher's score (goal 80%: met; it
scores more than the teacher on 4 of the 5 tracks). Shuffled and unshuffled differ only
by float roundings of the sums over patches, which a car at the road's edge can turn
into another path. The CNN collapses shuffled (-6%) and on the new backgrounds (-9%:
goal < 30% met). On the new backgrounds the AttentionNeuron fails too (-7% of its own
score; goal >= 70%: NOT met): on 5 tracks, after 50 frames of the teacher, it steers
0.2-0.7 to the right where on the grass it steers about 0. On 4 cars' frames the
background patches take 15-47% of its attention (the green grass: 5-14%), and both the
keys and the values of those never-seen patches move the action (on 96 frames its
actions moved by a mean square of 0.2-0.6 per output, where its steering error on the
green screen is 0.014): trained on plain green grass only, nothing tells the layer to
ignore what is not green. Tried and not shipped: the paper's raw-patch values with
linear keys (``--value-dim 0 --key-hidden 0``; 8 iterations, 12 min): 346.6
unshuffled, 353.2 shuffled (85% of the teacher), but -34.4 / -34.4 / -31.3 on the
new backgrounds, although offline its actions moved far less on them (mean square
0.02-0.18 per output). Tried and not shipped (session 25): domain randomisation, which
the paper does not do -- ``--train-backgrounds procedural`` replaces the grass on most
cloning episodes by random NumPy textures (never a photograph, never the test images)
and keeps the iteration best on the mean of grass and procedural validation tracks.
Fine-tuned from the shipped agent in stages (``--init``; 6 iterations of 16 cars x 500
frames, ``basic`` textures, seed 2; 10 of 24 x 600, seed 3; 8 with ``--procedural-style
rich --procedural-share 0.8``, seed 4): after stage 2 432.5 unshuffled, 427.5 shuffled,
backgrounds -28.2 / -44.3 / -23.9; after stage 3 401.4 / 392.8 (95% of the teacher),
backgrounds -12.0 / 4.2 / -27.7 (goal: 70% of its unshuffled score, 281, on each: far
from met); a stage 4 (8 more, ``--procedural-share 0.9``, seed 5) fell back: 385.0 /
374.5, backgrounds -15.4 / -34.4 / -33.8. The cloning loss stays at 0.14-0.17 (0.014 on
grass alone): in 30 minutes the small layer did not learn to drive on the textures it
was trained on either (procedural validation 89.0 after stage 2, grass 417.8).

Tried and not shipped (session 27): ``--method consistency`` (:func:`consistency_stage`,
NOT in the paper). Because ``colony eval`` pastes a background over the grass AFTER the
world draws, every screen with a new background has an exact green twin; the shipped
agent on the green twin is the target, and a copy's key and value networks learn to give
the same action, latent and attention on the textured screen (training backgrounds:
crops of the 16 ``skimage.data`` images that are not test backgrounds, tinted, and
procedural textures; validation on grass and ``rocket``, never a test image). ``colony
train sensory-carracing --agents attention --method consistency --init
runs/checkpoints/sensory_carracing_attention.pt --consistency-rounds 5
--consistency-steps 1500 --bc-minibatch 128 --consistency-envs 12 --workers 1 --seed 7``
(16,826 recorded screens, 2071 s on a shared core): before training grass 514.9 /
rocket -29.8 on the 4 validation tracks; after rounds 1-5 grass 283.0 / 337.7 / 309.8 /
351.7 / 325.4, rocket -24.0 / -33.2 / -33.2 / -33.2 / -33.2; the action error on
textured screens stayed at 0.066-0.072 (mean square; latent 0.175 -> 0.128 of its
variance, attention 0.59 -> 0.45): the small key/value networks (32 hidden units) could
not map every texture to "grass" and lost part of the green driving meanwhile. The kept
"best" was the starting agent, so nothing changed. Wider key/value networks started as
the same function (``--key-hidden 128 --value-hidden 128``, :func:`_widen`; 3 rounds,
``--seed 8``, 614 s): before grass 527.9 / rocket -27.4, after rounds 1-3 grass 263.9 /
288.9 / 161.5, rocket -23.2 / -33.3 / -33.3 (action error 0.066 -> 0.054): more
capacity fits the textures a little better but the car still leaves the road on the
validation background, and green driving degrades. Backgrounds goal: still NOT met.

    colony train sensory-carracing           # both students, 2 worker processes
    colony eval sensory-carracing --json eval.json
    colony watch sensory-carracing           # x reshuffles the patches, m: the CNN
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.console import Console

from colonylab._checks import check_dataclass_ints, check_float, check_int, check_optional_int
from colonylab.agents import build as build_agent
from colonylab.agents.patch_cnn import PatchCNNPolicy
from colonylab.collective_ml.evaluate import continuous_actions, evaluate_conditions, mean_return
from colonylab.collective_ml.population import episode_seeds
from colonylab.collective_ml.trainers.clone import behaviour_clone
from colonylab.envs.classic.carracing import (
    BACKGROUNDS,
    FLAT_GRASS,
    CarRacingConfig,
    CarRacingWorld,
    grass_mask,
    screen_patches,
    thin_lines,
    training_background,
)
from colonylab.envs.wrappers.conditions import Condition
from colonylab.runs.common.checkpoint import (
    make_checkpoint,
    provenance,
    reproduce_command,
    save_checkpoint,
)
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.common.stages import Stages, load_model, model_files
from colonylab.runs.common.tables import print_rows

EXPERIMENT = "sensory-carracing"
ACT_DIM = 2  # steer, accel
LABELS = {"attention": "AttentionNeuron", "cnn": "CNN", "filtered": "AttentionNeuron + filter"}
OPTIONAL = ("filtered",)
"""Students whose checkpoint ``colony eval`` scores only when it is there."""
TEACHER = "teacher (scripted, reads the track)"
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
VALIDATION_SEED = 777_000
"""Base seed of the validation tracks (the evaluation's are ``eval_seed``'s)."""
console = Console()

POSITIVE = (
    "consistency_rounds consistency_steps consistency_envs "
    "train_frames bc_iterations bc_envs bc_epochs cnn_epochs bc_replay bc_minibatch cnn_iterations "
    "eval_frames eval_episodes action_repeat downsample patch watch_envs attention_envs "
    "attention_frames attention_replay grid key_dim grid_head_hidden filter_width"
)
"""Config fields that must be integers >= 1."""
NON_NEGATIVE = "workers seed validate_episodes value_dim value_hidden key_hidden"
"""Config fields that must be integers >= 0."""


@dataclass(frozen=True)
class Config:
    """Clone an AttentionNeuron and a CNN from CarRacing's scripted driver (DAgger, normal
    screen); evaluate them unshuffled, shuffled and on natural-image backgrounds."""

    agents: Literal["both", "attention", "cnn", "filtered"] = "both"
    """Which students to train (``filtered``: DAgger fine-tuning of the AttentionNeuron
    behind the frozen filter of the ``--init`` ``sensory_carracing_filtered.pt``)."""
    train_frames: int = 400
    """Frames per training episode (CarRacing's standard is 1000; shortened for budget)."""
    bc_iterations: int = 8
    """DAgger iterations of the AttentionNeuron."""
    cnn_iterations: int = 6
    """DAgger iterations of the CNN."""
    bc_envs: int = 8
    """Episodes (cars, each its own track) per DAgger iteration."""
    bc_epochs: int = 6
    """AttentionNeuron: passes over the kept frames per iteration."""
    cnn_epochs: int = 8
    """CNN: passes over the kept frames per iteration."""
    bc_replay: int = 8
    """Rollouts kept for training (the latest)."""
    bc_minibatch: int = 256
    """Frames per minibatch."""
    bc_lr: float = 3e-3
    """AttentionNeuron: Adam learning rate."""
    cnn_lr: float = 1e-3
    """CNN: Adam learning rate."""
    bc_beta_decay: float = 0.5
    """DAgger: the teacher drives a car with probability ``beta_decay ** iteration``."""
    attention: Literal["grid", "neuron"] = "grid"
    """AttentionNeuron design: ``grid`` (Tang & Ha's vision layer,
    :class:`~colonylab.agents.sensory.AttentionGridPolicy`: fixed 2-D positional queries,
    keys from each patch's content, a latent grid read by a small CNN) or ``neuron``
    (the first try: 1-D queries, :class:`~colonylab.agents.sensory.AttentionNeuronPolicy`
    with ``recurrent=False``)."""
    attention_envs: int = 24
    """AttentionNeuron: episodes (cars) per DAgger iteration."""
    attention_frames: int = 600
    """AttentionNeuron: frames per training episode."""
    attention_replay: int = 8
    """AttentionNeuron: rollouts kept for training."""
    teacher_noise: float = 0.3
    """AttentionNeuron: DART noise, ``N(0, sd)`` added to the executed (never the
    labelled) teacher action, so that the kept frames include recoveries."""
    validate_episodes: int = 4
    """AttentionNeuron: tracks of ``eval_frames`` frames (not the evaluation's) that score
    each iteration; the student keeps its best iteration (0: no validation, the last)."""
    grid: int = 8
    """``grid``: side of the latent grid (``grid * grid`` fixed 2-D queries)."""
    key_hidden: int = 32
    """``grid``: hidden units of the key MLP (patch -> key)."""
    value_dim: int = 16
    """``grid``: learned features per patch (0: the raw patch, as in the paper)."""
    value_hidden: int = 32
    """``grid``: hidden units of the value MLP."""
    grid_conv: tuple[int, int] = (16, 32)
    """``grid``: channels of the two convolutions that read the latent grid."""
    grid_head_hidden: int = 64
    """``grid``: hidden units of the action head."""
    train_backgrounds: Literal["grass", "procedural"] = "grass"
    """AttentionNeuron: ``grass`` (CarRacing's green, as in the paper) or ``procedural``
    (domain randomisation, NOT in the paper: on ``--procedural-share`` of the training
    episodes the grass is replaced by a random NumPy texture --
    :func:`~colonylab.envs.classic.carracing.procedural_background`: solid colours,
    colour blobs, stripes, checkerboards; never a photograph -- and the validation
    scores the mean of its grass tracks and the same tracks on procedural textures)."""
    procedural_share: float = 0.75
    """``--train-backgrounds procedural``: share of training episodes off the grass."""
    procedural_style: Literal["basic", "rich", "photos", "mixed"] = "basic"
    """``--train-backgrounds procedural``: its textures (``basic``: solid, blobs, stripes,
    checkerboards; ``rich`` adds greyish colours, multi-scale noise and collages of
    shapes: :func:`~colonylab.envs.classic.carracing.procedural_background`; ``photos``:
    crops of the ``skimage.data`` training photos, never a test or validation background,
    ``mixed``: photos or ``rich`` textures, half and half --
    :func:`~colonylab.envs.classic.carracing.training_background`)."""
    init: str | None = None
    """AttentionNeuron: start from the weights of this ``sensory-carracing`` AttentionNeuron
    checkpoint (its spec must be the one these flags make) instead of fresh ones."""
    method: Literal["dagger", "consistency", "filter"] = "dagger"
    """AttentionNeuron: ``dagger`` (clone the scripted driver), ``consistency`` (NOT in
    the paper; needs ``--init``: the loaded agent on the green screen is the target, a
    copy of it learns to give the same attention, latent and action when the grass is
    replaced by training backgrounds -- :func:`consistency_stage`) or ``filter`` (NOT in
    the paper; needs ``--init``: a per-patch filter learns to paint what is not road one
    flat green in front of the frozen agent -- :func:`filter_stage`; writes
    ``sensory_carracing_filtered.pt``). Both use the ``--consistency-*`` settings."""
    filter_width: int = 24
    """``filter``: channels of the filter's hidden convolutions."""
    filter_dashboard: Literal["keep", "paint"] = "keep"
    """``filter``: what the filter's target does with the dashboard's black (rows 84-95,
    pure black pixels): ``keep`` it, or ``paint`` it flat green like the grass, so that
    every black pixel the filter meets is one to paint (a dark background cannot pass as
    dashboard); the indicator bars stay either way."""
    filter_dark: float = 0.0
    """``filter``: share of the training backgrounds darkened (multiplied by a random
    0-0.35), so that dark and black textures are among those it learns to paint."""
    filter_lines: float = 0.0
    """``filter``: share of the training backgrounds with thin straight lines and lattices
    drawn over them (:func:`~colonylab.envs.classic.carracing.thin_lines`: masts, wires,
    branches), so that thin grey structures are among those it learns to paint."""
    filter_action: float = 0.0
    """``filter``: weight of a third loss, the mean square difference between the frozen
    agent's actions on the filtered background screen and on the green screen as it saw
    it in training (the raw patches, or through the ``--init`` filter when refining one):
    the filter learns what the agent needs, not only what the pixels were."""
    filter_layers: int = 4
    """``filter``: convolutions of the filter (3 x 3 ones, then a 1 x 1)."""
    consistency_rounds: int = 4
    """``consistency``: rounds of (drive and record screens, train, validate)."""
    consistency_steps: int = 1500
    """``consistency``: gradient steps per round (minibatches of ``--bc-minibatch``)."""
    consistency_envs: int = 12
    """``consistency``: cars recorded per round (half driven by the target on green, half
    by the student on training backgrounds), ``--attention-frames`` frames each."""
    consistency_images: Literal["photos", "procedural", "mixed"] = "mixed"
    """``consistency``: training backgrounds
    (:func:`~colonylab.envs.classic.carracing.training_background`: crops of the
    ``skimage.data`` images that are NOT test backgrounds, procedural textures, or both)."""
    consistency_lr: float = 1e-3
    """``consistency``: Adam step of the student's key and value networks."""
    consistency_validation: str = "rocket"
    """``consistency``: the background (not a training one, not in ``--backgrounds``) that
    validates each round with the grass: the mean score of both keeps the best round."""
    num_queries: int = 16
    """AttentionNeuron: fixed queries (rows of the latent, each a 48-value patch mix)."""
    key_dim: int = 16
    """AttentionNeuron: width of queries and keys."""
    hidden_dim: int = 16
    """AttentionNeuron: width of the sensory cell that makes each patch's key."""
    head_hidden: int = 32
    """AttentionNeuron: hidden units of the action head (on the 16 x 48 latent)."""
    cnn_conv: tuple[int, int] = (16, 32)
    """CNN: channels of its two convolutions."""
    cnn_hidden: int = 64
    """CNN: hidden units of its head."""
    action_repeat: int = 2
    """Frames per action (the world draws only the last)."""
    downsample: int = 2
    """Average-pool the 96 x 96 screen by this factor."""
    patch: int = 8
    """Patch side in downsampled pixels (8: 36 patches of 16 x 16 screen pixels; the
    shipped CNN was cloned on 4 x 4 patches of the same screen, which it puts back on
    its grid either way)."""
    workers: int = 2
    """Worker processes stepping the cars (0: in this process)."""
    eval_frames: int = 500
    """``colony eval``: frames per episode (CarRacing's standard is 1000; shortened for
    budget)."""
    eval_episodes: int = 5
    """``colony eval``: episodes (tracks) per agent and condition."""
    eval_seed: int = 2024
    """``colony eval``: base seed of its tracks and shuffles."""
    backgrounds: tuple[str, ...] = (
        "astronaut",
        "coffee",
        "chelsea",
        "grace_hopper",
        "china",
        "flower",
    )
    """``colony eval``: natural images put over the grass (``skimage.data``'s first three
    since session 25; matplotlib's ``grace_hopper`` and scikit-learn's ``china`` and
    ``flower`` added in session 29 as fresh held-out ones)."""
    validation: bool = False
    """``colony eval``: score the checkpoint on the validation tracks instead -- the grass
    and ``--consistency-validation`` (never a test background), ``--validate-episodes``
    tracks from seed base ``777000 + --seed`` -- the score that picks among candidates
    (session 29's and 30's choices: ``--validation True --seed 900 --validate-episodes 8``)."""
    watch_envs: int = 2
    """``colony watch``: cars shown."""
    checkpoint_every: int | None = None
    """Write a resumable ``checkpoints/latest.pt`` (with the replay: hundreds of MB) every
    this many iterations (None: never; ``--resume`` then restarts a student)."""
    seed: int = 0
    """Seed of the initial weights, the training tracks and the trainer."""
    threads: int | None = 1
    """Torch CPU threads (None: torch's default)."""
    device: str = "cpu"
    """Where the evaluation's forward runs (the cars are always on the CPU)."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self,
            {
                **dict.fromkeys(POSITIVE.split(), 1),
                **dict.fromkeys(NON_NEGATIVE.split(), 0),
            },
        )
        if self.attention not in ("grid", "neuron"):
            raise ValueError(f"--attention must be grid or neuron, got {self.attention!r}")
        if self.attention == "grid" and self.key_dim % 2:
            raise ValueError(f"--key-dim {self.key_dim} must be even for --attention grid")
        if len(self.grid_conv) != 2 or min(self.grid_conv) < 1:
            raise ValueError(f"--grid-conv must be two channel counts >= 1, got {self.grid_conv}")
        check_float("--teacher-noise", self.teacher_noise, 0.0)
        if self.train_backgrounds not in ("grass", "procedural"):
            raise ValueError(
                f"--train-backgrounds must be grass or procedural, got {self.train_backgrounds!r}"
            )
        check_float("--procedural-share", self.procedural_share, 0.0, 1.0)
        if self.method not in ("dagger", "consistency", "filter"):
            raise ValueError(f"--method must be dagger, consistency or filter, got {self.method!r}")
        check_int("--filter-layers", self.filter_layers, 2)
        if self.filter_dashboard not in ("keep", "paint"):
            raise ValueError(
                f"--filter-dashboard must be keep or paint, got {self.filter_dashboard!r}"
            )
        check_float("--filter-dark", self.filter_dark, 0.0, 1.0)
        check_float("--filter-lines", self.filter_lines, 0.0, 1.0)
        check_float("--filter-action", self.filter_action, 0.0)
        if self.consistency_images not in ("photos", "procedural", "mixed"):
            raise ValueError(
                "--consistency-images must be photos, procedural or mixed, got "
                f"{self.consistency_images!r}"
            )
        check_float("--consistency-lr", self.consistency_lr, 0.0, low_open=True)
        if self.agents == "filtered" and (
            self.init is None or self.method not in ("dagger", "filter")
        ):
            raise ValueError(
                "--agents filtered fine-tunes the AttentionNeuron (--method dagger) or the "
                "filter (--method filter) of a trained AN + filter: it needs --init (a "
                "sensory_carracing_filtered.pt) and --method dagger or filter"
            )
        if self.method in ("consistency", "filter"):
            wanted = ("attention", "filtered") if self.method == "filter" else ("attention",)
            if self.init is None or self.attention != "grid" or self.agents not in wanted:
                raise ValueError(
                    f"--method {self.method} needs --agents {' or '.join(wanted)}, --attention "
                    "grid and --init (the trained AttentionNeuron whose green-screen outputs it "
                    "keeps; for --agents filtered the AN + filter whose filter it refines)"
                )
        if self.validation and not self.validate_episodes:
            raise ValueError("--validation needs --validate-episodes >= 1 (tracks per background)")
        # the runs and the eval that score --consistency-validation (_background_validation)
        if self.method in ("consistency", "filter") or self.agents == "filtered" or self.validation:
            if self.consistency_validation not in BACKGROUNDS:
                raise ValueError(
                    f"--consistency-validation {self.consistency_validation!r} is not one of "
                    f"{', '.join(BACKGROUNDS)}"
                )
            if self.consistency_validation in self.backgrounds:
                raise ValueError(
                    f"--consistency-validation {self.consistency_validation!r} is a test "
                    f"background (--backgrounds {' '.join(self.backgrounds)}): pick another"
                )
        check_optional_int("--checkpoint-every", self.checkpoint_every, 1)
        for name in ("bc_lr", "cnn_lr"):
            check_float(f"--{name.replace('_', '-')}", getattr(self, name), 0.0, low_open=True)
        check_float("--bc-beta-decay", self.bc_beta_decay, 0.0, 1.0, low_open=True)
        for name in self.backgrounds:
            if name not in BACKGROUNDS:
                raise ValueError(f"--backgrounds: {name!r} is not one of {', '.join(BACKGROUNDS)}")
        # the world checks these too; refuse here with the flag's name
        side = 96 // self.downsample if 96 % self.downsample == 0 else 0
        if not side or side % self.patch:
            raise ValueError(
                f"--patch {self.patch} must divide the screen side 96 // --downsample "
                f"{self.downsample}"
            )


def world_config(cfg: Config, **overrides: Any) -> dict[str, Any]:
    """The world's config fields this experiment sets."""
    return {
        "action_repeat": cfg.action_repeat,
        "downsample": cfg.downsample,
        "patch": cfg.patch,
        "workers": cfg.workers,
        **overrides,
    }


def decisions(cfg: Config, frames: int) -> int:
    """Agent steps in an episode of ``frames`` frames."""
    return math.ceil(frames / cfg.action_repeat)


def agent_spec(cfg: Config, kind: str) -> dict[str, Any]:
    """The spec of a student (saved in its checkpoint; :func:`build` rebuilds it)."""
    world = CarRacingConfig(**world_config(cfg, workers=0))
    if kind == "filtered":
        return {
            "type": "filtered",
            "filter": {
                "patch": cfg.patch,
                "channels": 3,
                "width": cfg.filter_width,
                "layers": cfg.filter_layers,
                "fill": [round(v / 255.0, 6) for v in FLAT_GRASS],
            },
            "policy": agent_spec(cfg, "attention"),
        }
    if kind == "attention" and cfg.attention == "grid":
        return {
            "type": "attention-grid",
            "act_dim": ACT_DIM,
            "input_dim": world.patch_dim,
            "grid": cfg.grid,
            "key_dim": cfg.key_dim,
            "key_hidden": cfg.key_hidden,
            "value_dim": cfg.value_dim,
            "value_hidden": cfg.value_hidden,
            "conv": list(cfg.grid_conv),
            "head_hidden": cfg.grid_head_hidden,
            "output": "tanh",
        }
    if kind == "attention":
        return {
            "type": "attention",
            "act_dim": ACT_DIM,
            "input_dim": world.patch_dim,
            "num_queries": cfg.num_queries,
            "key_dim": cfg.key_dim,
            "hidden_dim": cfg.hidden_dim,
            "head_hidden": cfg.head_hidden,
            "output": "tanh",
            "feed_action": False,
            "recurrent": False,
        }
    return {
        "type": "patch-cnn",
        "height": world.side,
        "width": world.side,
        "patch": cfg.patch,
        "act_dim": ACT_DIM,
        "conv": list(cfg.cnn_conv),
        "hidden": cfg.cnn_hidden,
        "output": "tanh",
    }


def build(spec: dict[str, Any]) -> torch.nn.Module:
    """``agents.build``: ``attention-grid``, ``attention`` or the ``patch-cnn`` baseline."""
    return build_agent(spec)


def checkpoint_name(kind: str) -> str:
    return f"sensory_carracing_{kind}.pt"


def _product(cfg: Config, kind: str, policy: torch.nn.Module, **meta: Any) -> dict[str, Any]:
    command = reproduce_command(f"train {EXPERIMENT}", dataclasses.replace(cfg, out=None))
    return make_checkpoint(
        EXPERIMENT,
        spec=agent_spec(cfg, kind),
        state_dict=policy.state_dict(),
        config=cfg,
        provenance=provenance(command, seed=cfg.seed, metrics={}, **meta),
        extra={"agent": LABELS[kind]},
    )


class _FilteredWorld:
    """A world whose observations pass through a frozen :class:`PatchFilter` (so that
    DAgger's replay keeps the filtered patches and training runs only the agent)."""

    def __init__(self, world: CarRacingWorld, filt: torch.nn.Module) -> None:
        self.unwrapped, self.filter = world, filt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unwrapped, name)

    @torch.no_grad()
    def reset(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.filter(self.unwrapped.reset(*args, **kwargs))

    @torch.no_grad()
    def step(self, actions: Any) -> Any:
        result = self.unwrapped.step(actions)
        return dataclasses.replace(result, obs=self.filter(result.obs))


def _clone(cfg: Config, kind: str, stages: Stages) -> tuple[torch.nn.Module, dict[str, Any]]:
    """DAgger from the scripted driver on the normal screen (unshuffled, green grass).

    ``kind == "filtered"``: the ``--init`` filtered agent's filter is frozen and its
    AttentionNeuron is fine-tuned on what the filter makes of the screens."""
    spec = agent_spec(cfg, kind)
    attention = kind in ("attention", "filtered")
    seed_everything(cfg.seed)
    student = build(spec)  # built even when replaced below: the seeded RNG stays the same
    filtered: torch.nn.Module | None = None
    if attention and cfg.init:  # --agents filtered always has one (Config checks)
        start, ckpt = load_model(cfg.init, EXPERIMENT, build)
        if ckpt["spec"] != spec:
            raise ValueError(
                f"--init {cfg.init}: its {LABELS[kind]} {ckpt['spec']} is not the one these "
                f"flags build, {spec}"
            )
        if kind == "filtered":
            filtered = start
            filtered.filter.requires_grad_(False)
            student = filtered.policy  # the AttentionNeuron learns; validation drives `filtered`
        else:
            student.load_state_dict(start.state_dict())
    resume = stages.resuming(kind)
    iterations = cfg.bc_iterations if attention else cfg.cnn_iterations
    lr = cfg.bc_lr if attention else cfg.cnn_lr
    epochs = cfg.bc_epochs if attention else cfg.cnn_epochs
    # the CNN keeps the settings it was shipped with (bc_envs, train_frames, bc_replay)
    envs = cfg.attention_envs if attention else cfg.bc_envs
    frames = cfg.attention_frames if attention else cfg.train_frames
    replay = cfg.attention_replay if attention else cfg.bc_replay
    noise = cfg.teacher_noise if attention else 0.0
    procedural = attention and cfg.train_backgrounds == "procedural"
    share = cfg.procedural_share if procedural else 0.0
    factory = CarRacingWorld.factory(
        **world_config(
            cfg, max_episode_steps=frames, procedural=share, procedural_style=cfg.procedural_style
        )
    )
    validate = None
    if attention and cfg.validate_episodes:
        # grass; with --train-backgrounds procedural also the same tracks off the grass
        checks = [
            CarRacingWorld.factory(
                **world_config(
                    cfg,
                    max_episode_steps=cfg.eval_frames,
                    procedural=p,
                    procedural_style=cfg.procedural_style,
                )
            )
            for p in ((0.0, 1.0) if procedural else (0.0,))
        ]

        def validate(policy: torch.nn.Module) -> float:
            return float(
                np.mean(
                    [
                        mean_return(
                            policy,
                            check,
                            episodes=cfg.validate_episodes,
                            max_steps=decisions(cfg, cfg.eval_frames),
                            seed=VALIDATION_SEED + cfg.seed,
                        )
                        for check in checks
                    ]
                )
            )

    if filtered is not None and cfg.validate_episodes:
        on_backgrounds = _background_validation(cfg)  # grass and --consistency-validation

        def validate(policy: torch.nn.Module) -> float:
            return float(np.mean(list(on_backgrounds(filtered).values())))

    def make_world(num_envs: int, iteration: int) -> Any:
        if filtered is not None:
            return _FilteredWorld(factory(num_envs=num_envs), filtered.filter)
        return factory(num_envs=num_envs)

    def log(iteration: int, record: dict[str, float]) -> None:
        stages.log(iteration, record)
        score = record.get("charts/validation_mean")
        console.print(
            f"{kind} (DAgger) {iteration}/{iterations}: loss {record['losses/bc']:.4f} "
            + ("" if score is None else f"validation {score:.1f} ")
            + f"({record['charts/seconds']:.0f} s, {record['charts/env_steps']:.0f} steps)"
        )

    stages.begin(kind, spec, student, {})
    result = behaviour_clone(
        student,
        make_world,
        lambda world: world.teacher_actions(),
        iterations=iterations,
        envs=envs,
        steps=decisions(cfg, frames),
        seed=cfg.seed,
        lr=lr,
        epochs=epochs,
        replay=replay,
        beta_decay=cfg.bc_beta_decay,
        teacher_noise=noise,
        minibatch=cfg.bc_minibatch,
        validate=validate,
        log=log,
        save=stages.save if cfg.checkpoint_every else None,
        checkpoint_every=cfg.checkpoint_every or 1,
        resume=resume,
    )
    info = {
        "trained_by": f"behaviour cloning (DAgger, {iterations} iterations of {envs} "
        f"episodes of {frames} frames, teacher noise {noise}, unshuffled "
        + (
            f"screen, grass replaced by procedural textures on {share:.0%} of the episodes) from "
            if procedural
            else "green screen) from "
        )
        + "the scripted driver"
        + (f", starting from {cfg.init}" if attention and cfg.init else "")
        + (", behind its frozen filter" if filtered is not None else ""),
        "validation": result.validation,
        "seconds": result.seconds,
        "env_steps": result.env_steps,
        "history": result.history,
    }
    return (student if filtered is None else filtered), info


def _record_screens(
    cfg: Config,
    target: torch.nn.Module,
    student: torch.nn.Module,
    rng: np.random.Generator,
    seed: int,
) -> np.ndarray:
    """Green screens ``uint8[K, 96, 96, 3]`` of ``--consistency-envs`` cars: the first half
    driven by ``target`` on the green screen, the rest by ``student`` seeing the grass
    replaced by a training background (one per car), both with DART noise
    ``--teacher-noise / 2`` on the executed action; every running car's screen of every
    step is kept (green: the backgrounds are put on while training)."""
    envs = cfg.consistency_envs
    world = CarRacingWorld(
        CarRacingConfig(num_envs=envs, **world_config(cfg, max_episode_steps=cfg.attention_frames))
    )
    backgrounds = np.stack([training_background(rng, cfg.consistency_images) for _ in range(envs)])
    on_green = np.arange(envs) < (envs + 1) // 2
    kept: list[np.ndarray] = []
    try:
        world.reset(seed=seed)
        running = np.ones(envs, dtype=bool)
        for _ in range(decisions(cfg, cfg.attention_frames)):
            screens = world.screens
            kept.append(screens[running])
            textured = np.where(
                (grass_mask(screens) & ~on_green[:, None, None])[..., None], backgrounds, screens
            )
            with torch.no_grad():
                obs = world.observe(textured)
                actions = torch.where(torch.as_tensor(on_green)[:, None], target(obs), student(obs))
            noise = rng.normal(0.0, cfg.teacher_noise / 2, size=actions.shape)
            actions = (actions + torch.as_tensor(noise, dtype=actions.dtype)).clamp(-1, 1)
            _, _, terminated, truncated, _ = world.step(actions)
            running &= ~(terminated.numpy() | truncated.numpy())
            if not running.any():
                break
    finally:
        world.close()
    return np.concatenate(kept)


@torch.no_grad()
def _widen(small: torch.nn.Module, big: torch.nn.Module) -> bool:
    """Copy a trained two-layer MLP ``small`` into the same MLP with more (or as many)
    hidden units, ``big``, so that ``big`` computes the same function: the new hidden
    units keep their random input weights and get zero output weights. False (``big``
    untouched) when ``big`` is narrower or not of that form."""
    layers = [m for m in small.modules() if isinstance(m, torch.nn.Linear)]
    wide = [m for m in big.modules() if isinstance(m, torch.nn.Linear)]
    if len(layers) != 2 or len(wide) != 2 or wide[0].out_features < layers[0].out_features:
        return False
    hidden = layers[0].out_features
    wide[0].weight[:hidden] = layers[0].weight
    wide[0].bias[:hidden] = layers[0].bias
    wide[1].weight.zero_()
    wide[1].weight[:, :hidden] = layers[1].weight
    wide[1].bias.copy_(layers[1].bias)
    return True


def _background_validation(cfg: Config) -> Any:
    """``validate(policy) -> {"grass": score, <--consistency-validation>: score}`` on the
    validation tracks (``{}`` with ``--validate-episodes 0``)."""
    checks = {
        "grass": CarRacingWorld.factory(**world_config(cfg, max_episode_steps=cfg.eval_frames)),
        cfg.consistency_validation: CarRacingWorld.factory(
            **world_config(
                cfg, max_episode_steps=cfg.eval_frames, background=cfg.consistency_validation
            )
        ),
    }

    def validate(policy: torch.nn.Module) -> dict[str, float]:
        if not cfg.validate_episodes:  # no validation: the last round is kept
            return {}
        return {
            name: mean_return(
                policy,
                check,
                episodes=cfg.validate_episodes,
                max_steps=decisions(cfg, cfg.eval_frames),
                seed=VALIDATION_SEED + cfg.seed,
            )
            for name, check in checks.items()
        }

    return validate


def _end_round(
    cfg: Config,
    stages: Stages,
    history: list[dict[str, float]],
    where: tuple[int, int, int, int, float],
    losses: dict[str, float],
    scores: dict[str, float],
    said: str,
) -> float:
    """Log and print the end of a ``--method consistency | filter`` round; ``where`` is
    ``(step, round index, screens, env steps, start time)``. Returns the round's
    validation mean (its index without validation: the last round wins)."""
    step, round_, screens, env_steps, start = where
    mean = float(np.mean(list(scores.values()))) if scores else float(round_)
    record = {
        **{f"losses/{name}": value for name, value in losses.items()},
        **({"charts/validation_mean": mean} if scores else {}),
        **{f"charts/validation_{k}": v for k, v in scores.items()},
        "charts/screens": float(screens),
        "charts/env_steps": float(env_steps),
        "charts/seconds": time.perf_counter() - start,
    }
    stages.log(step, record)
    history.append({"round": round_ + 1, **record})
    console.print(
        f"{cfg.method} round {round_ + 1}/{cfg.consistency_rounds}: {said}; "
        + ", ".join(f"{k} {v:.1f}" for k, v in scores.items())
        + f" ({record['charts/seconds']:.0f} s, {screens} screens)"
    )
    return mean


def _round_info(
    trained_by: str, best: tuple, start: float, env_steps: int, history: list[dict[str, float]]
) -> dict[str, Any]:
    """The checkpoint's provenance of a ``--method consistency | filter`` stage;
    ``best`` is ``(validation mean, state, scores)`` of the kept round."""
    return {
        "trained_by": trained_by,
        "validation": best[0] if best[2] else None,
        "validation_scores": best[2],
        "seconds": time.perf_counter() - start,
        "env_steps": env_steps,
        "history": history,
    }


def consistency_stage(cfg: Config, stages: Stages) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``--method consistency`` (NOT in the paper): teach a trained AttentionNeuron to see
    a new background as it sees the grass.

    The target is the ``--init`` agent, frozen, on the GREEN screen. The student starts as
    its copy -- with ``--key-hidden`` / ``--value-hidden`` wider than the target's, the
    same functions in wider networks (:func:`_widen`: more capacity, the same start) --
    and only its key and value networks learn. Each round records green screens along driven tracks
    (:func:`_record_screens`), then for ``--consistency-steps`` minibatches of recorded
    screens puts a fresh training background (:func:`training_background`, never a test
    image) over the grass of 80% of them and fits the student on those to the target on
    the green originals: mean squared error of the action, plus the latent's (over the
    target latent's variance), plus the attention's (times the patch count). As the
    background is pasted over the grass after the world draws (:func:`apply_background`,
    exactly as ``colony eval`` does), every textured screen has a green twin: the labels
    are exact. After each round the student drives the validation tracks on the grass and
    on ``--consistency-validation`` (the round with the best mean of both is kept,
    the starting agent included; ``--validate-episodes 0``: the last round).
    """
    spec = agent_spec(cfg, "attention")
    target, ckpt = load_model(cfg.init, EXPERIMENT, build)
    target.eval().requires_grad_(False)
    seed_everything(cfg.seed)
    student = build(spec)
    same = {k: v for k, v in ckpt["spec"].items() if k not in ("key_hidden", "value_hidden")}
    if same != {k: v for k, v in spec.items() if k not in ("key_hidden", "value_hidden")}:
        raise ValueError(
            f"--init {cfg.init}: its AttentionNeuron {ckpt['spec']} differs from the one these "
            f"flags build, {spec}, beyond --key-hidden / --value-hidden"
        )
    student.load_state_dict(
        {k: v for k, v in target.state_dict().items() if not k.startswith(("key.", "value."))},
        strict=False,
    )
    fresh = False
    for name in ("key", "value"):
        small, big = getattr(target, name), getattr(student, name)
        fresh |= not _widen(small, big)
    if fresh:
        console.print("consistency: new key / value networks (narrower than the target's)")
    student.features.requires_grad_(False)
    student.head.requires_grad_(False)
    learn = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(learn, lr=cfg.consistency_lr)
    rng = np.random.default_rng([cfg.seed, 0xC0515])
    generator = torch.Generator().manual_seed(cfg.seed)
    validate = _background_validation(cfg)
    stages.begin("attention", spec, student, {})
    start = time.perf_counter()
    screens: list[np.ndarray] = []
    targets: tuple[list[torch.Tensor], ...] = ([], [], [])  # latent, attention, action
    best: tuple[float, dict[str, torch.Tensor], dict[str, float]] | None = None
    history: list[dict[str, float]] = []
    env_steps = 0
    step = 0
    scores = validate(student)
    console.print(f"consistency: before training {scores}")
    if not fresh and scores:
        best = (float(np.mean(list(scores.values()))), copy.deepcopy(student.state_dict()), scores)
    for round_ in range(cfg.consistency_rounds):
        recorded = _record_screens(cfg, target, student, rng, seed=cfg.seed * 1000 + round_ * 97)
        env_steps += len(recorded) * cfg.action_repeat
        screens.append(recorded)
        with torch.no_grad():  # the target's outputs on the green screens, once
            for chunk in torch.from_numpy(recorded).split(256):
                latent_g, attention_g = target.attend(
                    screen_patches(chunk, cfg.downsample, cfg.patch)
                )
                action_g = target.act(latent_g)
                for store, value in zip(targets, (latent_g, attention_g, action_g), strict=True):
                    store.append(value)
        data = torch.from_numpy(np.concatenate(screens))
        masks = torch.from_numpy(grass_mask(data.numpy()))
        latents, attentions, actions = (torch.cat(store) for store in targets)
        bank = torch.from_numpy(
            np.stack([training_background(rng, cfg.consistency_images) for _ in range(512)])
        )
        losses = []
        for _ in range(cfg.consistency_steps):
            index = torch.randint(len(data), (cfg.bc_minibatch,), generator=generator)
            green = data[index]
            pick = torch.randint(len(bank), (len(index),), generator=generator)
            swap = torch.rand(len(index), generator=generator) < 0.8
            where = (masks[index] & swap[:, None, None])[..., None]
            textured = torch.where(where, bank[pick], green)
            latent_g, attention_g, action_g = latents[index], attentions[index], actions[index]
            latent, attention = student.attend(screen_patches(textured, cfg.downsample, cfg.patch))
            action = student.act(latent)
            patches = attention.shape[-1]
            loss_action = (action - action_g).pow(2).mean()
            loss_latent = (latent - latent_g).pow(2).mean() / latent_g.var().clamp(min=1e-6)
            loss_attention = (patches * (attention - attention_g)).pow(2).mean()
            loss = loss_action + loss_latent + loss_attention
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append([loss_action.item(), loss_latent.item(), loss_attention.item()])
            step += 1
        scores = validate(student)
        loss_mean = np.mean(losses[-200:], axis=0)
        mean = _end_round(
            cfg,
            stages,
            history,
            (step, round_, len(data), env_steps, start),
            dict(zip(("action", "latent", "attention"), loss_mean.tolist(), strict=True)),
            scores,
            f"losses action {loss_mean[0]:.4f} latent {loss_mean[1]:.3f} "
            f"attention {loss_mean[2]:.3f}",
        )
        if best is None or mean > best[0]:
            best = (mean, copy.deepcopy(student.state_dict()), scores)
    assert best is not None
    student.load_state_dict(best[1])
    student.requires_grad_(True)
    trained_by = (
        f"consistency (NOT in the paper): {cfg.consistency_rounds} rounds x "
        f"{cfg.consistency_steps} steps fitting the key and value networks, on screens "
        f"whose grass is replaced by {cfg.consistency_images} training backgrounds, to "
        f"{cfg.init} on the green twins; best round by grass + "
        f"{cfg.consistency_validation} validation"
    )
    return student, _round_info(trained_by, best, start, env_steps, history)


def filter_batch(
    cfg: Config,
    green: torch.Tensor,
    grass: torch.Tensor,
    backgrounds: torch.Tensor,
    swap: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One minibatch of ``--method filter``: from green screens ``uint8[B, 96, 96, 3]``,
    their grass masks ``bool[B, 96, 96, 1]``, backgrounds ``uint8[B, 96, 96, 3]`` and
    ``swap`` ``bool[B, 1, 1, 1]`` (which screens get theirs), returns the filter's input
    patches (grass replaced where ``swap``), the wanted patches (grass -- and with
    ``--filter-dashboard paint`` the dashboard's black -- painted :data:`FLAT_GRASS`) and
    each pooled pixel's share of painted pixels ``[B, N, patch * patch]``."""
    from colonylab.envs.classic.carracing import dashboard_black

    flat = torch.tensor(FLAT_GRASS, dtype=torch.uint8)
    given = torch.where(grass & swap, backgrounds, green)
    paint = grass
    if cfg.filter_dashboard == "paint":
        paint = grass | dashboard_black(green)[..., None]
    wanted = torch.where(paint, flat, green)
    share = paint.expand(-1, -1, -1, 3).to(torch.uint8) * 255
    return (
        screen_patches(given, cfg.downsample, cfg.patch),
        screen_patches(wanted, cfg.downsample, cfg.patch),
        screen_patches(share, cfg.downsample, cfg.patch)[..., ::3],
    )


def filter_backgrounds(cfg: Config, rng: np.random.Generator, count: int) -> np.ndarray:
    """``uint8[count, 96, 96, 3]``: training backgrounds of ``--method filter``
    (:func:`~colonylab.envs.classic.carracing.training_background`), a ``--filter-dark``
    share of them darkened (multiplied by a random 0-0.35), a ``--filter-lines`` share
    with thin lines drawn over them first (:func:`thin_lines`)."""
    bank = np.stack([training_background(rng, cfg.consistency_images) for _ in range(count)])
    if cfg.filter_lines > 0:  # drawn only then: the RNG stream of earlier runs is kept
        for k in np.flatnonzero(rng.random(count) < cfg.filter_lines):
            bank[k] = thin_lines(bank[k], rng)
    if cfg.filter_dark > 0:
        dark = rng.random(count) < cfg.filter_dark
        scale = rng.uniform(0.0, 0.35, size=count)[dark, None, None, None]
        bank[dark] = np.rint(bank[dark] * scale).astype(np.uint8)
    return bank


def filter_stage(cfg: Config, stages: Stages) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``--method filter`` (NOT in the paper): a learned per-patch filter in front of the
    frozen ``--init`` AttentionNeuron (:class:`~colonylab.agents.patch_filter.FilteredPolicy`).

    The filter (a small convolutional network run on every patch alone, so the agent
    stays exactly invariant to the patches' order) learns to paint what is not road, kerb,
    car or dashboard one flat green (:data:`~colonylab.envs.classic.carracing.FLAT_GRASS`):
    its input is a recorded screen whose grass is replaced, on 85% of them, by a training
    background (:func:`training_background`: never a test image), its target is the same
    screen with the grass painted flat green (exact labels: the backgrounds are pasted
    after the world draws, as ``colony eval`` does). Each of ``--consistency-rounds``
    rounds records screens (:func:`_record_screens`: half the cars driven by the agent on
    green, half by the filtered agent on training backgrounds), takes
    ``--consistency-steps`` Adam steps (cosine-decayed from ``--consistency-lr``) on
    minibatches of ``--bc-minibatch`` screens -- loss: the cross-entropy of each pooled
    pixel's predicted background share against its true grass share, plus 100 x the mean
    square error of the filtered patches against the flat-green ones -- then validates on
    the grass and
    ``--consistency-validation``; the best round by the mean of both is kept (the
    untrained filter, the identity, included).

    With ``--agents filtered`` the ``--init`` is an AN + filter: its filter is refined
    (trained on), in front of its own frozen AttentionNeuron (the start is a candidate too).
    ``--filter-action W`` adds ``W x`` the mean square difference between the agent's
    actions on the filtered input and on the green screen as it saw it in training (the
    raw patches; when refining, through the ``--init`` filter, kept frozen as the
    reference); ``--filter-lines`` and ``--filter-dark`` vary the training backgrounds
    (:func:`filter_backgrounds`).
    """
    import torch.nn.functional as F

    spec = agent_spec(cfg, "filtered")
    start, ckpt = load_model(cfg.init, EXPERIMENT, build)
    refine = cfg.agents == "filtered"  # --init is an AN + filter: refine its filter
    if ckpt["spec"] != (spec if refine else spec["policy"]):
        raise ValueError(
            f"--init {cfg.init}: its {'AN + filter' if refine else 'AttentionNeuron'} "
            f"{ckpt['spec']} is not the one these flags build, "
            f"{spec if refine else spec['policy']}"
        )
    seed_everything(cfg.seed)
    student = build(spec)  # built even when replaced below: the seeded RNG stays the same
    if refine:
        student.load_state_dict(start.state_dict())
        target = student.policy
    else:
        target = start
        student.policy.load_state_dict(target.state_dict())
    target.eval().requires_grad_(False)
    student.policy.requires_grad_(False)
    # --filter-action's reference: the agent on the green screen as it saw it in training
    # (through the --init filter when refining one, else the raw patches)
    reference = copy.deepcopy(student.filter).requires_grad_(False) if refine else None
    optimizer = torch.optim.Adam(student.filter.parameters(), lr=cfg.consistency_lr)
    total = cfg.consistency_rounds * cfg.consistency_steps
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
    rng = np.random.default_rng([cfg.seed, 0xF117E])
    generator = torch.Generator().manual_seed(cfg.seed)
    validate = _background_validation(cfg)
    stages.begin("filtered", spec, student, {})
    start = time.perf_counter()
    scores = validate(student)
    console.print(f"filter: before training ({'--init' if refine else 'the identity'}) {scores}")
    best = (
        float(np.mean(list(scores.values()))) if scores else -math.inf,
        copy.deepcopy(student.state_dict()),
        scores,
    )
    history: list[dict[str, float]] = []
    screens: list[np.ndarray] = []
    env_steps = step = 0
    for round_ in range(cfg.consistency_rounds):
        student.eval()
        recorded = _record_screens(cfg, target, student, rng, seed=cfg.seed * 1000 + round_ * 97)
        env_steps += len(recorded) * cfg.action_repeat
        screens.append(recorded)
        data = torch.from_numpy(np.concatenate(screens))
        masks = torch.from_numpy(grass_mask(data.numpy()))[..., None]
        bank = torch.from_numpy(filter_backgrounds(cfg, rng, 512))
        student.train()
        losses = []
        for _ in range(cfg.consistency_steps):
            index = torch.randint(len(data), (cfg.bc_minibatch,), generator=generator)
            green, mask = data[index], masks[index]
            pick = torch.randint(len(bank), (len(index),), generator=generator)
            swap = (torch.rand(len(index), generator=generator) < 0.85)[:, None, None, None]
            given, wanted, grass = filter_batch(cfg, green, mask, bank[pick], swap)
            seen, share = student.filter.parts(given)
            square = (seen - wanted).pow(2).mean()
            cross = F.binary_cross_entropy(share.clamp(1e-6, 1 - 1e-6), grass)
            loss = cross + 100.0 * square
            action = torch.zeros(())
            if cfg.filter_action > 0:  # the agent's actions as on the green screen
                with torch.no_grad():
                    raw = screen_patches(green, cfg.downsample, cfg.patch)
                    aim = target(reference(raw) if reference is not None else raw)
                action = (student.policy(seen) - aim).pow(2).mean()
                loss = loss + cfg.filter_action * action
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append([square.item(), cross.item(), action.item()])
            step += 1
        student.eval()
        scores = validate(student)
        loss_mean = np.mean(losses[-200:], axis=0)
        mean = _end_round(
            cfg,
            stages,
            history,
            (step, round_, len(data), env_steps, start),
            {
                "filter_square": float(loss_mean[0]),
                "filter_share": float(loss_mean[1]),
                "filter_action": float(loss_mean[2]),
            },
            scores,
            f"square error {loss_mean[0]:.5f}, share cross-entropy {loss_mean[1]:.4f}, "
            f"action error {loss_mean[2]:.5f}",
        )
        if mean > best[0] or not scores:
            best = (mean, copy.deepcopy(student.state_dict()), scores)
    student.load_state_dict(best[1])
    student.requires_grad_(True)
    trained_by = (
        f"filter (NOT in the paper): {cfg.consistency_rounds} rounds x "
        f"{cfg.consistency_steps} steps fitting "
        + (
            f"{cfg.init}'s filter in front of its frozen AttentionNeuron"
            if refine
            else f"a per-patch filter in front of the frozen {cfg.init}"
        )
        + f" to paint {cfg.consistency_images} training backgrounds "
        f"({cfg.filter_dark:.0%} darkened, {cfg.filter_lines:.0%} with thin lines) flat "
        f"green, action loss weight {cfg.filter_action}, dashboard black: "
        f"{cfg.filter_dashboard}; best round by grass + {cfg.consistency_validation} validation"
    )
    return student, _round_info(trained_by, best, start, env_steps, history)


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Clone the students, save their checkpoints, and evaluate them (``--agents both``)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    console.print(f"[bold]{EXPERIMENT}[/] -> {run.path}")
    kinds: tuple[str, ...] = ("attention", "cnn") if cfg.agents == "both" else (cfg.agents,)
    sizes = {"attention": cfg.bc_iterations, "cnn": cfg.cnn_iterations}
    sizes["filtered"] = cfg.bc_iterations
    if cfg.method == "consistency":
        sizes["attention"] = cfg.consistency_rounds * cfg.consistency_steps
    if cfg.method == "filter":
        kinds, sizes["filtered"] = ("filtered",), cfg.consistency_rounds * cfg.consistency_steps
    stages = Stages(run, EXPERIMENT, cfg, {k: sizes[k] for k in kinds}, resume)
    for kind in kinds:
        if kind in stages.done:
            continue
        if cfg.method == "filter":
            policy, info = filter_stage(cfg, stages)
        elif cfg.method == "consistency":
            policy, info = consistency_stage(cfg, stages)
        else:
            policy, info = _clone(cfg, kind, stages)
        console.print(f"{LABELS[kind]}: cloned in {info['seconds']:.0f} s")
        history = info.pop("history")
        save_checkpoint(
            run.checkpoints / checkpoint_name(kind), _product(cfg, kind, policy, **info)
        )
        (run.path / f"history_{kind}.json").write_text(json.dumps(history, indent=2))
        stages.finish(kind)
    run.close()
    summary: dict[str, Any] = {}
    if cfg.agents == "both":
        summary = evaluate(cfg, checkpoint=str(run.checkpoints))
        (run.path / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


def load_agents(checkpoint: str | None) -> dict[str, torch.nn.Module]:
    """Both students: from the directory ``checkpoint`` (or the shipped ones), or one file
    (``sensory_carracing_<attention|cnn>*.pt``, e.g. ``sensory_carracing_attention_plain.pt``)."""
    path = Path(checkpoint) if checkpoint else None
    kinds = [k for k in LABELS if path and path.name.startswith(f"sensory_carracing_{k}")]
    if path is not None and path.is_file() and path.suffix == ".pt" and kinds:
        files = {kinds[0]: path}
    else:
        needed = {k: checkpoint_name(k) for k in LABELS if k not in OPTIONAL}
        files = model_files(checkpoint, SHIPPED, needed)
        root = Path(checkpoint) if checkpoint else SHIPPED
        if root.is_dir():  # the optional students, when they are there
            files |= {k: root / checkpoint_name(k) for k in OPTIONAL}
            files = {k: f for k, f in files.items() if k not in OPTIONAL or f.is_file()}
    return {LABELS[k]: load_model(path, EXPERIMENT, build)[0] for k, path in files.items()}


def conditions(cfg: Config) -> list[tuple[Condition, str | None]]:
    """``(condition, background)`` of every row, in table order."""
    rows: list[tuple[Condition, str | None]] = [
        (Condition("unshuffled"), None),
        (Condition("shuffled at reset", shuffle=0), None),
    ]
    for name in cfg.backgrounds:
        rows.append((Condition(f"background {name}, shuffled at reset", shuffle=0), name))
    return rows


def _adapt(label: str, policy: torch.nn.Module, condition: Condition) -> Condition:
    """The CNN meets the new backgrounds unshuffled: only the background changes."""
    if isinstance(policy, PatchCNNPolicy) and condition.name.startswith("background"):
        return dataclasses.replace(
            condition, name=f"{condition.name} (CNN: unshuffled)", shuffle=None
        )
    return condition


def teacher_returns(cfg: Config, episodes: int, frames: int, seed: int) -> np.ndarray:
    """The scripted driver's returns on the evaluation's tracks (``episode_seeds``)."""
    world = CarRacingWorld(
        CarRacingConfig(num_envs=episodes, **world_config(cfg, max_episode_steps=frames))
    )
    try:
        world.reset(seed=episode_seeds(seed, 1, episodes, shared=True).reshape(-1))
        total = np.zeros(episodes)
        running = np.ones(episodes, dtype=bool)
        for _ in range(decisions(cfg, frames)):
            _, reward, terminated, truncated, _ = world.step(world.teacher_actions())
            total += np.where(running, reward.numpy(), 0.0)
            running &= ~(terminated.numpy() | truncated.numpy())
            if not running.any():
                break
    finally:
        world.close()
    return total


def validation_rows(cfg: Config, agents: dict[str, torch.nn.Module]) -> dict[str, Any]:
    """``colony eval sensory-carracing --validation``: each agent's mean return on the
    validation tracks (:func:`_background_validation`), grass and
    ``--consistency-validation``, and the mean of both (``validation_mean``: what picks
    among candidates; :class:`Config` checks that it is not a test background). Test
    backgrounds never enter."""
    validate = _background_validation(cfg)
    rows: list[dict[str, Any]] = []
    means: dict[str, float] = {}
    for label, policy in agents.items():
        scores = validate(policy.eval())
        for name, score in scores.items():
            rows.append(
                {
                    "condition": f"validation {name}",
                    "agent": label,
                    "mean": score,
                    "std": float("nan"),
                    "episodes": cfg.validate_episodes,
                    "background": name,
                }
            )
        means[label] = float(np.mean(list(scores.values())))
        console.print(
            f"{label}: validation "
            + ", ".join(f"{k} {v:.1f}" for k, v in scores.items())
            + f", mean {means[label]:.1f}"
        )
    out: dict[str, Any] = {
        "experiment": EXPERIMENT,
        "world": "carracing",
        "validation_seed": VALIDATION_SEED + cfg.seed,
        "rows": rows,
        "validation_means": means,
    }
    if len(means) == 1:
        out["validation_mean"] = next(iter(means.values()))
    return out


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval sensory-carracing``: rows ``{condition, agent, mean, std, episodes,
    returns, background, of_teacher[, of_original][, note]}`` for the teacher and both
    students under every condition (CarRacing's return over ``eval_frames`` frames)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    agents = load_agents(checkpoint)
    if cfg.validation:
        return {**validation_rows(cfg, agents), "checkpoint": checkpoint or str(SHIPPED)}
    teacher = teacher_returns(cfg, cfg.eval_episodes, cfg.eval_frames, cfg.eval_seed)
    teacher_mean = float(teacher.mean())
    rows: list[dict[str, Any]] = []
    original: dict[str, float] = {}
    for condition, background in conditions(cfg):
        note = "" if condition.name == "unshuffled" else "reads the track, not the screen: "
        note += "the unshuffled episodes" if note else ""
        row = {
            "condition": condition.name,
            "agent": TEACHER,
            "mean": teacher_mean,
            "std": float(teacher.std()),
            "episodes": cfg.eval_episodes,
            "returns": [round(float(r), 3) for r in teacher],
            "background": background or "grass",
            "of_teacher": 1.0,
        }
        rows.append({**row, "note": note} if note else row)
        factory = CarRacingWorld.factory(
            **world_config(cfg, max_episode_steps=cfg.eval_frames, background=background)
        )
        for agent_row in evaluate_conditions(
            agents,
            factory,
            [condition],
            episodes=cfg.eval_episodes,
            max_steps=decisions(cfg, cfg.eval_frames),
            seed=cfg.eval_seed,
            action_fn=continuous_actions,
            adapt=_adapt,
            device=cfg.device,
        ):
            agent_row["background"] = background or "grass"
            agent_row["of_teacher"] = agent_row["mean"] / teacher_mean
            if condition.name == "unshuffled":
                original[agent_row["agent"]] = agent_row["mean"]
            elif background is not None and original.get(agent_row["agent"], 0.0) > 0:
                # a share of a score <= 0 says nothing: no ratio then
                agent_row["of_original"] = agent_row["mean"] / original[agent_row["agent"]]
            rows.append(agent_row)
    print_rows(
        rows,
        f"{EXPERIMENT}: CarRacing return over {cfg.eval_episodes} tracks of "
        f"{cfg.eval_frames} frames (teacher {teacher_mean:.1f})",
        console,
    )
    return {"experiment": EXPERIMENT, "world": "carracing", "rows": rows}


def picture(
    cfg: Config,
    path: str | Path,
    *,
    seed: int = 3,
    frames: int = 240,
    filtered: str | Path | None = None,
) -> Path:
    """Write the README's figure: after ``frames`` frames of the teacher on track
    ``seed``, the real screen, the agent's input (pooled, then its patches shuffled),
    the same moment on each of ``cfg.backgrounds``, and those as the agent sees them;
    with ``filtered`` (a ``sensory_carracing_filtered.pt``), also each background as the
    filtered agent sees it after its learned per-patch filter."""
    from PIL import Image, ImageDraw

    size = 288
    world = CarRacingWorld(CarRacingConfig(num_envs=1, **world_config(cfg, workers=0)))
    try:
        world.reset(seed=seed)
        for _ in range(decisions(cfg, frames)):
            world.step(world.teacher_actions())
        screen = world.screens[0].copy()
    finally:
        world.close()
    from colonylab.agents.sensory import unpatchify
    from colonylab.envs.classic.carracing import apply_background, background_image

    side = 96 // cfg.downsample
    order = torch.randperm((side // cfg.patch) ** 2, generator=torch.Generator().manual_seed(0))

    filt = load_model(filtered, EXPERIMENT, build)[0].filter if filtered else None

    def seen(image: np.ndarray, shuffle: bool, through: Any = None) -> np.ndarray:
        patches = world.observe(image[None])[0]
        if through is not None:
            with torch.no_grad():
                patches = through(patches).clamp(0.0, 1.0)
        if shuffle:
            patches = patches[order]
        return (unpatchify(patches, side, side, cfg.patch).numpy() * 255).astype(np.uint8)

    panels = [
        (screen, "the real screen (96 x 96)"),
        (seen(screen, False), f"pooled to {side} x {side}"),
        (seen(screen, True), f"what the agent sees: {(side // cfg.patch) ** 2} patches, shuffled"),
    ]
    swapped = {name: apply_background(screen, background_image(name)) for name in cfg.backgrounds}
    panels += [(image, f"new background: {name}") for name, image in swapped.items()]
    panels += [
        (seen(image, True), f"{name}, as the agent sees it") for name, image in swapped.items()
    ]
    if filt is not None:
        panels += [
            (seen(image, True, filt), f"{name}, after the learned filter")
            for name, image in swapped.items()
        ]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    caption = 26
    sheet = Image.new("RGB", (cols * (size + 8) + 8, rows * (size + caption + 8) + 8), (24, 24, 30))
    draw = ImageDraw.Draw(sheet)
    for i, (image, text) in enumerate(panels):
        r, c = divmod(i, cols)
        x, y = 8 + c * (size + 8), 8 + r * (size + caption + 8)
        sheet.paste(Image.fromarray(image).resize((size, size), Image.NEAREST), (x, y))
        draw.text((x, y + size + 6), text, fill=(230, 230, 230))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def watch(cfg: Config, checkpoint: str | None = None) -> Any:
    """``colony watch sensory-carracing``: cars driven by the AttentionNeuron, patches
    shuffled at every episode's start; ``x`` re-shuffles now, ``m`` hands the cars to
    the CNN and back."""
    from colonylab.envs.render.sensory_watch import SensoryWatch

    agents = load_agents(checkpoint)
    world = CarRacingWorld(
        CarRacingConfig(
            num_envs=cfg.watch_envs,
            **world_config(cfg, max_episode_steps=cfg.eval_frames, workers=0),
            autoreset=True,
        )
    )
    side = 96 // cfg.downsample
    return SensoryWatch(
        world,
        agents,
        shuffle_every=None,
        action_fn=continuous_actions,
        image_shape=(side, side, cfg.patch),
        seed=cfg.seed,
        name=f"{EXPERIMENT} (x: reshuffle, m: next agent)",
    )


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
