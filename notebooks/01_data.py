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
# # Task 1 — Loading Sign Language MNIST and splitting it honestly
#
# **What:** load the 28×28 grayscale hand signs (24 letters, A–Y without J), check them, look
# at them, and split the training file into training and validation sets.
#
# **How well:** the seed lab report split at random and saw a validation accuracy of 1.000
# against a test accuracy of 0.971. This notebook shows why — the training file is made of
# near-identical variants of far fewer photos — and builds a *grouped* split that keeps every
# family of variants on one side, so that validation scores predict test scores.

# %% tags=["parameters"]
DATA_DIR = None  # folder with the two CSV files; None: $SIGN_MNIST_DIR, data/, kagglehub, else the stand-in
OUTPUT_DIR = "outputs/01_data"  # where metrics.json goes
PROFILE = "full"  # {"quick", "full"}: "quick" takes the quick settings of the next cell
SPLIT_KIND = "grouped"  # {"grouped", "random"}: the split later notebooks use
VALIDATION_FRACTION = 0.3  # (0.0, 1.0): share of the training file held out for validation
SPLIT_SEED = 43  # [0, 4294967295]: both splits' seed (the seed report's random_state), as in every notebook
SEED = 43  # [0, 4294967295]: the samples of the nearest-neighbour analysis
FAMILY_THRESHOLD = 0.97  # (0.0, 1.0]: two same-letter images with a correlation above this are one family
SAMPLE_SIZE = 3000  # [1, inf): images per comparison in the nearest-neighbour analysis


# %% [markdown]
# With `PROFILE = "quick"` the notebook runs in minutes: the quick profile's settings replace the
# parameters above (the report runner's quick profile uses the same ones, and sets every parameter
# itself in a cell it adds after this one).

# %% tags=["profile"]
import labutils as lu

quick = lu.QUICK_SETTINGS["01_data"] if PROFILE == "quick" else {}
SAMPLE_SIZE = quick.get("SAMPLE_SIZE", SAMPLE_SIZE)
quick

# %% [markdown]
# ## Loading and checking the data
#
# `labutils.load_dataset` finds the two Kaggle CSV files, compares their SHA-256 with the
# published files and parses them strictly: a malformed cell stops the run with an error that
# names the file, row and column. The banner below says which data this run uses.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

dataset = lu.load_dataset(DATA_DIR)
lu.data_banner(dataset)

# %% [markdown]
# The first rows of the training file as stored: a label, then the 784 pixel intensities of a
# 28×28 image read row by row.

# %%
pd.read_csv(dataset.files.train, nrows=5).iloc[:, :12]

# %% [markdown]
# Shapes and value ranges of the arrays the rest of the report works with.

# %%
shapes = pd.DataFrame(
    {
        "images": [dataset.x_train.shape, dataset.x_test.shape],
        "dtype": [dataset.x_train.dtype, dataset.x_test.dtype],
        "pixel range": [
            (dataset.x_train.min(), dataset.x_train.max()),
            (dataset.x_test.min(), dataset.x_test.max()),
        ],
        "letters": [np.unique(dataset.y_train).size, np.unique(dataset.y_test).size],
    },
    index=["train", "test"],
)
shapes

# %% [markdown]
# ## Class balance
#
# Share of each letter in the training and test files. The dashed line is a uniform share
# (1/24).

# %% tags=["thumbnail"]
lu.plot_class_balance({"train": dataset.y_train, "test": dataset.y_test})
plt.show()

# %%
train_shares = pd.Series(dataset.y_train).map(lu.label_to_letter).value_counts(normalize=True)
test_shares = pd.Series(dataset.y_test).map(lu.label_to_letter).value_counts(normalize=True)


def balance_words(shares: pd.Series) -> str:
    spread = shares.max() / shares.min()
    verdict = "close to balanced" if spread < 1.5 else "unbalanced"
    return (
        f"{verdict}: letter shares range from {shares.min():.2%} ({shares.idxmin()}) to "
        f"{shares.max():.2%} ({shares.idxmax()}), a ratio of {spread:.1f}"
    )


lu.show_markdown(
    f"The training file is {balance_words(train_shares)}; the test file is {balance_words(test_shares)} "
    f"(uniform: {1 / lu.NUM_CLASSES:.2%}). Where the test file is uneven, plain accuracy weighs its frequent "
    "letters more, which is why later notebooks also report a weighted F1 and per-letter scores."
)

# %% [markdown]
# ## What the signs look like
#
# One training image per letter, in label order.

# %%
present = np.unique(dataset.y_train)
first_of_each = [int(np.flatnonzero(dataset.y_train == label)[0]) for label in present]
lu.plot_image_grid(
    dataset.x_train[first_of_each], [lu.label_to_letter(label) for label in present], columns=12
)
plt.show()

# %% [markdown]
# Several letters differ only in a finger's position (A, E, M, N, S and T are all closed fists),
# which is what makes the task harder than digit MNIST.
#
# ## Normalisation
#
# The networks take pixel intensities scaled to 0–1 as `float32`; labels stay the dataset's
# letters' numbers (0–24 without 9) in the files, and become class indices 0–23 for training.

# %%
x_train = dataset.x_train.astype("float32") / 255.0
x_test = dataset.x_test.astype("float32") / 255.0
y_train_index = lu.label_to_index(dataset.y_train)
pd.DataFrame(
    {
        "min": [x_train.min(), x_test.min()],
        "max": [x_train.max(), x_test.max()],
        "mean": [x_train.mean(), x_test.mean()],
    },
    index=["train", "test"],
).round(3)

# %% [markdown]
# ## Why a random split leaks
#
# For a sample of training images we find the most similar *other* training image, and for a
# sample of test images the most similar training image (Pearson correlation of the pixels:
# 1.0 means identical up to brightness and contrast).

# %%
rng = np.random.default_rng(SEED)
train_sample = rng.choice(len(dataset.x_train), min(SAMPLE_SIZE, len(dataset.x_train)), replace=False)
test_sample = rng.choice(len(dataset.x_test), min(SAMPLE_SIZE, len(dataset.x_test)), replace=False)
train_to_train = lu.nearest_neighbour_similarity(
    dataset.x_train[train_sample], dataset.x_train, exclude_index=train_sample
)
test_to_train = lu.nearest_neighbour_similarity(dataset.x_test[test_sample], dataset.x_train)
lu.plot_similarity_distributions({"train → other train": train_to_train, "test → train": test_to_train})
plt.show()

# %%
near_copy = 0.99
lu.show_markdown(
    f"A training image's nearest other training image has a median correlation of "
    f"{np.median(train_to_train):.4f}, and {np.mean(train_to_train > near_copy):.1%} of them exceed "
    f"{near_copy}: nearly every training image has a near-copy in the same file. A test image's nearest "
    f"training image has a median correlation of only {np.median(test_to_train):.4f} "
    f"({np.mean(test_to_train > near_copy):.1%} above {near_copy}). A random validation set therefore "
    "contains near-copies of training images, and its accuracy says little about the test set."
)

# %% [markdown]
# ## Families of near-duplicates
#
# Two images of the same letter whose correlation exceeds `FAMILY_THRESHOLD` are linked; each
# connected set of linked images is a *family* — in the real data, the variants of one photo.

# %%
families = lu.near_duplicate_families(dataset.x_train, dataset.y_train, threshold=FAMILY_THRESHOLD)
family_sizes = np.bincount(families)
lu.plot_family_sizes(families)
plt.show()

# %%
lu.show_markdown(
    f"At a threshold of {FAMILY_THRESHOLD}, the {len(families):,} training images form "
    f"{family_sizes.size:,} families: median size {np.median(family_sizes):.0f}, largest "
    f"{family_sizes.max()}, and {np.sum(family_sizes == 1)} images with no near-duplicate. "
    f"The training file therefore holds about {family_sizes.size:,} independent pictures, not "
    f"{len(families):,}."
)

# %% [markdown]
# ## Two splits, side by side
#
# The seed report's kind of split, stratified at random (it held out 30 % with `random_state=43`,
# the defaults of `VALIDATION_FRACTION` and `SPLIT_SEED`), and the grouped split, which assigns
# whole families to one side, class by class, as close to the requested fraction as the families
# allow.

# %%
splits = {
    "random": lu.random_split(dataset.y_train, VALIDATION_FRACTION, seed=SPLIT_SEED),
    "grouped": lu.grouped_split(dataset.y_train, families, VALIDATION_FRACTION, seed=SPLIT_SEED),
}
pd.DataFrame({name: split.summary() for name, split in splits.items()}).T

# %% [markdown]
# The honest test of a split: how close is each validation image to its nearest image on the
# *training* side? A good validation set looks, from the training side, like the test set does.

# %%
validation_to_train = {}
for name, split in splits.items():
    sample = rng.choice(split.validation_index, min(SAMPLE_SIZE, len(split.validation_index)), replace=False)
    validation_to_train[name] = lu.nearest_neighbour_similarity(
        dataset.x_train[sample], dataset.x_train[split.train_index]
    )
lu.plot_similarity_distributions(
    {
        **{f"{name} validation → train": values for name, values in validation_to_train.items()},
        "test → train": test_to_train,
    }
)
plt.show()

# %%
medians = {name: float(np.median(values)) for name, values in validation_to_train.items()}
lu.show_markdown(
    f"Median correlation with the nearest training image: random validation {medians['random']:.4f}, grouped "
    f"validation {medians['grouped']:.4f}, test {np.median(test_to_train):.4f}. The random validation set is "
    "made of near-copies of training images; the grouped one is, like the test set, made of pictures the "
    "network has not seen."
)

# %% [markdown]
# Both splits keep the letters' shares: stratification works for the grouped split too.

# %%
split = splits[SPLIT_KIND]
lu.plot_class_balance(
    {
        "grouped train": dataset.y_train[splits["grouped"].train_index],
        "grouped validation": dataset.y_train[splits["grouped"].validation_index],
        "random validation": dataset.y_train[splits["random"].validation_index],
    }
)
plt.show()

# %% [markdown]
# ## The split the report uses
#
# Later notebooks recompute the same split through `labutils.make_split` with the same
# parameters (it is deterministic), so each notebook runs on its own. Its shapes:

# %%
pd.DataFrame(
    {
        "images": [x_train[split.train_index].shape, x_train[split.validation_index].shape, x_test.shape],
        "letters": [
            np.unique(dataset.y_train[split.train_index]).size,
            np.unique(dataset.y_train[split.validation_index]).size,
            np.unique(dataset.y_test).size,
        ],
    },
    index=[f"{SPLIT_KIND} train", f"{SPLIT_KIND} validation", "test"],
)

# %% [markdown]
# The numbers the index page and the tests read back:

# %%
metrics = dict(
    data=dataset.summary(),
    split_kind=SPLIT_KIND,
    splits={name: s.summary() for name, s in splits.items()},
    family_threshold=FAMILY_THRESHOLD,
    families={
        "count": int(family_sizes.size),
        "median_size": float(np.median(family_sizes)),
        "max_size": int(family_sizes.max()),
    },
    nearest_neighbour_median={
        "train_to_train": float(np.median(train_to_train)),
        "test_to_train": float(np.median(test_to_train)),
        **{f"{name}_validation_to_train": value for name, value in medians.items()},
    },
)
lu.write_metrics(
    OUTPUT_DIR, notebook="01_data", data_source=dataset.source, profile=PROFILE, models={}, **metrics
)
metrics["splits"]

# %% [markdown]
# ## Conclusion
#
# The rule behind the split: a validation side that resembles the training images more closely than
# the test images do (a higher median nearest-training correlation) measures memory, not reading.

# %%
test_median = float(np.median(test_to_train))
random_leaks = medians["random"] > test_median
grouped_leaks = medians["grouped"] > test_median
{"random split leaks": random_leaks, "grouped split leaks": grouped_leaks}

# %%
grouped = splits["grouped"].summary()
data_words = "the real Kaggle files" if dataset.is_real else "the SYNTHETIC STAND-IN, not the real data"
lu.show_markdown(
    f"The data are {data_words}: {len(dataset.y_train):,} training and {len(dataset.y_test):,} test images "
    f"of {len(lu.LETTERS)} letters. The training images form only {family_sizes.size:,} families of "
    "near-duplicates. The seed's random split's validation images resemble the training images "
    f"{'more' if random_leaks else 'no more'} than the test images do (median nearest-training correlation "
    f"{medians['random']:.4f} against {test_median:.4f}); the grouped split's "
    f"{'do too' if grouped_leaks else 'do not'} ({medians['grouped']:.4f}). The grouped split holds out "
    f"{grouped['validation_rows']:,} images ({grouped['validation_fraction']:.1%}) in "
    f"{grouped['validation_families']:,} whole families and trains on {grouped['train_rows']:,}; the report "
    f"uses the **{SPLIT_KIND}** split."
)
