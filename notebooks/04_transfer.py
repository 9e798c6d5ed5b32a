# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (sign-mnist)
#     language: python
#     name: sign-mnist
# ---

# %% [markdown]
# # Task 4 — Transfer learning: does a pretrained network help?
#
# **What:** reuse networks pretrained on ImageNet (`keras.applications`: VGG16, as in the seed
# lab report, and modern ones) for the hand signs, in two regimes — *feature extraction* (the
# pretrained network frozen, a new softmax head trained on its features) and *fine-tuning* (its
# top block trained further, at a low learning rate, on augmented images) — and compare them with
# the networks of Tasks 2 and 3.
#
# **How well:** the seed report reached 0.8073 test accuracy with a frozen VGG16 (after dividing
# its images by 225 instead of 255) and concluded that transfer learning was not worth it. The
# conclusion below answers the lab's three questions — how did it change the classifier, could we
# have done without it, and what is the best test result of the whole lab — with this run's numbers.

# %% tags=["parameters"]
DATA_DIR = None  # folder with the two CSV files; None: $SIGN_MNIST_DIR, data/, kagglehub, else the stand-in
OUTPUT_DIR = "../reports/04_transfer"  # where models and metrics.json go
TASK2_DIR = "../reports/02_cnn"  # earlier runs compared with (left out of the table if absent)
TASK3_DIR = "../reports/03_augmentation"
PROFILE = "full"  # "quick" or "full" (set by the report runner)
SEED = 0
SPLIT_KIND = "grouped"
VALIDATION_FRACTION = 0.3
SPLIT_SEED = 43
GROUP_THRESHOLD = 0.97
BACKBONES = ["vgg16", "mobilenet_v2", "efficientnet_b0"]  # any of labutils.BACKBONES
IMAGE_SIZE = 32  # side of the backbone input in pixels, at least 32
WEIGHTS = "imagenet"  # "imagenet", None, or a weights file path ("{backbone}" is replaced by the name)
HEAD_EPOCHS = 25  # feature extraction: epochs of the new head on the cached features
HEAD_LEARNING_RATE = 1e-3
FINE_TUNE_EPOCHS = 6  # fine-tuning: epochs on augmented images ...
FINE_TUNE_SECONDS = 90  # ... but at most this many seconds per backbone
FINE_TUNE_LEARNING_RATE = 1e-4
FINE_TUNE_VALIDATION_IMAGES = 2000  # grouped-validation images checked after each fine-tuning epoch
BATCH_SIZE = 128
FEATURE_CACHE_DIR = "../data/cache/features"  # backbone features kept between runs; None: no disk cache
TRAIN_LIMIT = None  # use only this many training images (quick runs); None: all

# %% [markdown]
# ## Data and split
#
# The same data and grouped split as in Tasks 2 and 3; the test set is used once per model, at the end.

# %%
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from livelossplot import PlotLossesKeras

import labutils as lu

for backbone in BACKBONES:
    if backbone not in lu.BACKBONES:
        raise ValueError(f"BACKBONES: unknown backbone {backbone!r}; choose from {sorted(lu.BACKBONES)}")
keras.utils.set_random_seed(SEED)
output_dir = Path(OUTPUT_DIR)
output_dir.mkdir(parents=True, exist_ok=True)
dataset, split, data = lu.prepare_task_data(
    DATA_DIR, split_kind=SPLIT_KIND, validation_fraction=VALIDATION_FRACTION, split_seed=SPLIT_SEED,
    group_threshold=GROUP_THRESHOLD, train_limit=TRAIN_LIMIT, seed=SEED,
)
lu.data_banner(dataset)

# %% [markdown]
# ## What reaches each backbone
#
# Each backbone was trained on colour photographs of at least 32x32 pixels with its own input
# convention. A layer inside every model turns the 28x28 gray image (values 0-1) into exactly
# that: resized to `IMAGE_SIZE` pixels, replicated into three channels, scaled to 0-255 and
# passed through the backbone's own `preprocess_input`. Below: the value range that reaches
# each backbone for the training images (the seed report divided by 225 here, a typo).

# %%
probe = data.x_train[:256]
inputs = {}
for backbone in BACKBONES:
    prepared = np.asarray(lu.BackboneInput(backbone, IMAGE_SIZE)(probe))
    inputs[backbone] = {"shape": str(prepared.shape[1:]), "min": prepared.min(), "max": prepared.max(),
                        "preprocessing": lu.BACKBONES[backbone].preprocessing}
pd.DataFrame(inputs).T

# %% [markdown]
# ## Pretrained weights
#
# `WEIGHTS` chooses the starting point. ImageNet weights are downloaded by Keras once and cached
# in `~/.keras/models`. If they cannot be had (no network), the networks start from random
# weights — a banner below says so for every backbone, and so do the tables and the index page.

# %%
transfers = {}
for backbone in BACKBONES:
    keras.utils.set_random_seed(SEED)
    transfers[backbone] = lu.build_transfer_model(backbone, image_size=IMAGE_SIZE, weights=lu.resolve_weights(WEIGHTS, backbone))
pretrained = {backbone: t.pretrained for backbone, t in transfers.items()}
for backbone, t in transfers.items():
    display(lu.weights_banner(backbone, t.pretrained, t.weights_status))
pd.DataFrame({b: {**lu.count_weights(t.model), "pretrained": t.pretrained} for b, t in transfers.items()}).T

# %% [markdown]
# ## Feature extraction: one forward pass, then a new head
#
# The frozen backbone turns every image into a feature vector once; the features are cached
# (in memory and, with `FEATURE_CACHE_DIR`, on disk), so each epoch of the head costs a matrix
# product, not a pass through the backbone. The head (dropout + softmax) keeps its best epoch on
# the grouped validation loss. The head first standardises each feature with the training
# features' mean and variance (fixed from then on).

# %%
features, extraction_seconds, from_cache = {}, {}, {}
for backbone, t in transfers.items():
    start = time.perf_counter()
    features[backbone] = {}
    for part, images in (("train", data.x_train), ("val", data.x_val), ("test", data.x_test)):
        features[backbone][part], from_cache[(backbone, part)] = lu.cached_features(t, images, cache_dir=FEATURE_CACHE_DIR)
    extraction_seconds[backbone] = time.perf_counter() - start
pd.DataFrame({b: {"feature size": features[b]["train"].shape[1], "seconds": extraction_seconds[b],
                  "from disk cache": all(from_cache[(b, p)] for p in ("train", "val", "test"))} for b in BACKBONES}).T

# %%
head_logs, head_seconds = {}, {}
for backbone, t in transfers.items():
    keras.utils.set_random_seed(SEED)
    t.adapt_head(features[backbone]["train"])
    t.head.compile(optimizer=keras.optimizers.Adam(HEAD_LEARNING_RATE), loss="sparse_categorical_crossentropy",
                   metrics=["accuracy"])
    history = t.head.fit(
        features[backbone]["train"], data.y_train, batch_size=BATCH_SIZE, epochs=HEAD_EPOCHS, verbose=0,
        validation_data=(features[backbone]["val"], data.y_val),
        callbacks=[lu.EpochClock(), keras.callbacks.EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True)],
    )
    head_logs[backbone] = lu.history_frame(history)
    head_seconds[backbone] = float(head_logs[backbone]["seconds"].iloc[-1])
pd.DataFrame({b: {"epochs": len(log), "best val accuracy": log["val_accuracy"].max(), "seconds": head_seconds[b]}
              for b, log in head_logs.items()}).T.round(4)

# %% [markdown]
# The test set meets each feature-extraction model once; the models are saved now, before
# fine-tuning changes their weights.

# %%
records, probabilities, inference = {}, {}, {}
for backbone, t in transfers.items():
    name = f"{backbone}_features"
    inference[backbone] = lu.inference_rate(t.model, data.x_test[:1024], batch_size=512)  # fine-tuning keeps the architecture
    probabilities[name] = t.head.predict(features[backbone]["test"], verbose=0)
    test = lu.classification_metrics(data.y_test, probabilities[name])
    val_accuracy = float(t.head.evaluate(features[backbone]["val"], data.y_val, verbose=0)[1])
    t.model.save(output_dir / f"{name}.keras")
    weights = lu.count_weights(t.model)
    records[name] = lu.model_record(
        {k: test[k] for k in ("accuracy", "log_loss", "f1_weighted", "errors")},
        val_accuracy_random=None, val_accuracy_grouped=val_accuracy,
        train_seconds=extraction_seconds[backbone] + head_seconds[backbone], epochs=len(head_logs[backbone]), seed=SEED,
        model_file=f"{name}.keras", backbone=backbone, regime="feature extraction", image_size=IMAGE_SIZE,
        pretrained=t.pretrained, weights_status=t.weights_status, trainable_weights=weights["trainable"],
        total_weights=weights["total"], inference_images_per_second=inference[backbone], train_images=len(data.x_train),
    )
pd.DataFrame(records).T[["test_accuracy", "test_errors", "val_accuracy_grouped", "train_seconds", "pretrained"]]

# %% [markdown]
# ## Fine-tuning the top block
#
# Now the backbone's top block is unfrozen (batch normalisation stays frozen and in inference
# mode) and trained together with the head, at a low learning rate, on the augmented images of
# Task 3. The validation accuracy is checked after each epoch on `FINE_TUNE_VALIDATION_IMAGES`
# grouped-validation images and the best epoch is kept; `FINE_TUNE_SECONDS` caps each backbone,
# checked after every batch (on a CPU one epoch of VGG16 takes minutes, so the cap may end the
# first epoch early: the table below says how many epochs ran).

# %%
rng = np.random.default_rng(SEED)
monitor = rng.choice(len(data.x_val), size=min(FINE_TUNE_VALIDATION_IMAGES, len(data.x_val)), replace=False)
augment = lu.augmentation_pipeline(seed=SEED)
trainable_after = {backbone: lu.unfreeze(t) for backbone, t in transfers.items()}
pd.DataFrame({b: {"first trainable layer": lu.BACKBONES[b].fine_tune_from["top"], "trainable weights": n,
                  "total weights": lu.count_weights(transfers[b].model)["total"]} for b, n in trainable_after.items()}).T

# %%
fine_logs, fine_seconds = {}, {}
for backbone, t in transfers.items():
    keras.utils.set_random_seed(SEED)
    t.model.compile(optimizer=keras.optimizers.Adam(FINE_TUNE_LEARNING_RATE), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"], jit_compile=False)
    print(f"--- {backbone}")
    history = t.model.fit(
        lu.training_dataset(data.x_train, data.y_train, batch_size=BATCH_SIZE, seed=SEED, augmentation=augment),
        validation_data=(data.x_val[monitor], data.y_val[monitor]), epochs=FINE_TUNE_EPOCHS, verbose=2,
        callbacks=[lu.EpochClock(), lu.TimeBudget(FINE_TUNE_SECONDS, per_batch=True),
                   keras.callbacks.EarlyStopping(monitor="val_loss", patience=FINE_TUNE_EPOCHS, restore_best_weights=True),
                   PlotLossesKeras()],
    )
    fine_logs[backbone] = lu.history_frame(history)
    fine_seconds[backbone] = float(fine_logs[backbone]["seconds"].iloc[-1])

# %%
pd.concat({b: log for b, log in fine_logs.items()}, names=["backbone"]).round(4)

# %% [markdown]
# The fine-tuned models meet the test set once, and are saved. Their grouped validation accuracy
# is the one on the `FINE_TUNE_VALIDATION_IMAGES` images checked during fine-tuning
# (`val_images` in `metrics.json`); inference speed is the one measured above for the same
# architecture.

# %%
for backbone, t in transfers.items():
    name = f"{backbone}_fine_tuned"
    probabilities[name] = t.model.predict(data.x_test, batch_size=256, verbose=0)
    test = lu.classification_metrics(data.y_test, probabilities[name])
    # the grouped-validation images that fine-tuning checked (a full pass over all of them costs a minute for VGG16)
    val_accuracy = float(t.model.evaluate(data.x_val[monitor], data.y_val[monitor], batch_size=256, verbose=0)[1])
    t.model.save(output_dir / f"{name}.keras")
    weights = lu.count_weights(t.model)
    before = records[f"{backbone}_features"]
    records[name] = lu.model_record(
        {k: test[k] for k in ("accuracy", "log_loss", "f1_weighted", "errors")},
        val_accuracy_random=None, val_accuracy_grouped=val_accuracy,
        train_seconds=before["train_seconds"] + fine_seconds[backbone], epochs=before["epochs"] + len(fine_logs[backbone]),
        seed=SEED, model_file=f"{name}.keras", backbone=backbone, regime="fine-tuning", image_size=IMAGE_SIZE,
        pretrained=t.pretrained, weights_status=t.weights_status, trainable_weights=weights["trainable"],
        total_weights=weights["total"], fine_tune_seconds=fine_seconds[backbone], fine_tune_epochs=len(fine_logs[backbone]),
        inference_images_per_second=inference[backbone], val_images=len(monitor), train_images=len(data.x_train),
    )
pd.DataFrame(records).T[["regime", "test_accuracy", "test_errors", "val_accuracy_grouped", "train_seconds", "pretrained"]]

# %% [markdown]
# ## Everything trained in the lab, side by side
#
# The networks of Tasks 2 and 3 (read from their runs' `metrics.json`, when those ran on the same
# data) and every backbone in both regimes. `train_seconds` is what it took to obtain each
# model (for feature extraction: the forward pass plus the head; for fine-tuning: that plus the
# fine-tuning); `train_images` is how many training images it learned from (the final networks of
# Tasks 2-3: all of them; the others: the grouped split's training side); inference is measured on
# this machine's CPU at batch 512.

# %%
documents = {}
for task, folder, notebook in (("Task 2", TASK2_DIR, "02_cnn"), ("Task 3", TASK3_DIR, "03_augmentation")):
    try:
        documents[task] = lu.read_task_metrics(folder, notebook, dataset.source)
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

# %%
transfer_rows = comparison[comparison.task == "Task 4"]
best_transfer = transfer_rows.test_accuracy.idxmax()
own_rows = comparison[comparison.task != "Task 4"]
best_own = own_rows.test_accuracy.idxmax() if len(own_rows) else None
best_overall = comparison.test_accuracy.idxmax()
lu.show_markdown(
    f"Best transfer model: **{best_transfer}** with {transfer_rows.test_accuracy.max():.4f} test accuracy "
    f"({int(transfer_rows.test_errors[best_transfer])} errors, {int(transfer_rows.total_weights[best_transfer]):,} weights, "
    f"{transfer_rows.inference_images_per_second[best_transfer]:,.0f} images/s). "
    + (f"Best network of Tasks 2-3: **{best_own}** with {own_rows.test_accuracy.max():.4f} "
       f"({int(own_rows.total_weights[best_own]):,} weights, {own_rows.inference_images_per_second[best_own]:,.0f} images/s)."
       if best_own else "Tasks 2-3 were not run on this data, so they are not compared.")
)

# %% [markdown]
# ## Where the best transfer model still errs

# %%
predicted = probabilities[best_transfer].argmax(axis=1)
lu.per_letter_report(data.y_test, predicted).sort_values("f1").head(8).round(4)

# %%
lu.plot_confusion_matrix(data.y_test, predicted)
plt.show()

# %%
ax = lu.plot_misclassified(dataset.x_test, data.y_test, predicted, limit=24)
plt.show() if ax is not None else lu.show_markdown("No test image is misclassified.")

# %% [markdown]
# ## Saving the numbers

# %%
lu.write_metrics(
    output_dir,
    notebook="04_transfer",
    data_source=dataset.source,
    profile=PROFILE,
    models=records,
    split=split.summary(),
    image_size=IMAGE_SIZE,
    weights_requested=WEIGHTS,
    pretrained=pretrained,
    comparison=comparison.reset_index().to_dict(orient="records"),
    best_overall={"model": best_overall, "task": comparison.task[best_overall],
                  "test_accuracy": float(comparison.test_accuracy[best_overall])},
    reference_published={"task4_accuracy": 0.8073, "task4_log_loss": 0.73},
)
pd.DataFrame(records).T[["test_accuracy", "test_errors", "train_seconds", "trainable_weights", "model_file"]]

# %% [markdown]
# ## Conclusion: the lab's three questions

# %%
any_pretrained = any(pretrained.values())
features_best = max((n for n in records if n.endswith("_features")), key=lambda n: records[n]["test_accuracy"])
tuned_best = max((n for n in records if n.endswith("_fine_tuned")), key=lambda n: records[n]["test_accuracy"])
data_words = "On the real data" if dataset.is_real else "On the SYNTHETIC STAND-IN (not the real data)"
if not any_pretrained:
    changed = ("**No pretrained weights were available in this run, so this is not transfer learning** — every backbone "
               "started from random weights and the numbers below measure those architectures trained from scratch, "
               "not the benefit of pretraining. ")
else:
    changed = ""
changed += (
    f"Frozen features: best {features_best} at {records[features_best]['test_accuracy']:.4f}; fine-tuning the top block: "
    f"best {tuned_best} at {records[tuned_best]['test_accuracy']:.4f} (seed report, frozen VGG16: 0.8073)."
)
if best_own is not None:
    difference = comparison.test_accuracy[best_transfer] - comparison.test_accuracy[best_own]
    without = (
        f"Could we have done without it? Our own {best_own} ({int(comparison.total_weights[best_own]):,} weights, "
        f"{comparison.train_seconds[best_own]:.0f} s) reaches {comparison.test_accuracy[best_own]:.4f}, "
        f"{'above' if difference < 0 else 'below'} the best transfer model by {abs(100 * difference):.2f} points, "
        f"which needs {int(comparison.total_weights[best_transfer]):,} weights and {comparison.train_seconds[best_transfer]:.0f} s "
        f"and classifies {comparison.inference_images_per_second[best_transfer]:,.0f} images/s against "
        f"{comparison.inference_images_per_second[best_own]:,.0f}."
    )
    if comparison.train_images[best_own] > comparison.train_images[best_transfer]:  # NaN (not recorded) compares False
        without += (f" (Our network learned from all {int(comparison.train_images[best_own]):,} training images, the "
                    f"transfer model from the split's {int(comparison.train_images[best_transfer]):,}.)")
else:
    without = "Could we have done without it? Run notebooks 02 and 03 on the same data to answer."
lu.show_markdown(
    f"{data_words}: {changed}\n\n{without}\n\n"
    f"**Best test result of the whole lab: {comparison.test_accuracy[best_overall]:.4f}** "
    f"({int(comparison.test_errors[best_overall])} of {len(data.y_test):,} wrong) by **{best_overall}** "
    f"({comparison.task[best_overall]})."
)
