"""The Acme conv net itself; imported only when a model is created."""
from torch import nn


class AcmeNet(nn.Module):
    def __init__(self, width: int = 16, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(_stage(width, width), _stage(width, width * 2))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(width * 2, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.stages(self.stem(x))))


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def build_acme_net(width: int = 16, num_classes: int = 10) -> AcmeNet:
    return AcmeNet(width=width, num_classes=num_classes)
