"""Networks of the golden fixture runs that the built-in registry does not have: a model that fails on its
first batch (the failed-trial fixture). The file name and class names reach the documents, as a student's would."""

from torch import nn


class FailsAtOnce(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        if self.training:  # passes the pre-flight forward (eval mode), fails on the first training batch
            raise RuntimeError("boom on the first batch")
        return self.fc(x.flatten(1))
