"""Only the package list: everything else is in pyproject.toml.

The wheel carries the top-level recipes/, rewards/ and launch/ folders as packages inside fakehr_orchestra
(pyproject's [tool.setuptools.package-dir] maps them); `packages.find` cannot list packages that live outside the
package tree, so the list is made here.
"""

from setuptools import find_packages, setup

SHIPPED = ["fakehr_orchestra.shipped.recipes", "fakehr_orchestra.shipped.recipes.profiles",
           "fakehr_orchestra.shipped.rewards", "fakehr_orchestra.shipped.launch"]

setup(packages=find_packages(include=["fakehr_orchestra", "fakehr_orchestra.*"]) + SHIPPED)
