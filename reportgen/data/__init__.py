"""Data stage: datasets from IDX, PNG archives and folders, CIFAR-10; train-only augmentation.

The names below need no torch, so a spec can be checked and the CLI can list datasets without loading
the engine (importing torch takes ~1.5 s).
"""

CLASS_NAMES = {
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "mnist": [str(d) for d in range(10)],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    # RGB 3×32×32, read by torchvision's CIFAR10 (data/cifar.py); the names as its batches.meta gives them
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DATASETS = (*CLASS_NAMES, "custom")  # custom: class names come from the image files themselves
FORMATS = ("idx", "png_tar", "png_folder", "class_folders")
TORCHVISION = {"mnist": "MNIST", "kmnist": "KMNIST", "fashion-mnist": "FashionMNIST"}
