"""A Checkov custom check for tests/tf_json.rs: every planned strata_data
(terraform_data in Terraform's plan) resource is read with its values, and
the one whose input is "r" fails, so the test sees both outcomes."""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class PlannedInput(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="A planned data resource has an input other than \"r\"",
            id="CKV_STRATA_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["strata_data", "terraform_data"],
        )

    def scan_resource_conf(self, conf):
        values = conf.get("input")
        if not values:
            return CheckResult.FAILED
        return CheckResult.FAILED if values[0] == "r" else CheckResult.PASSED


check = PlannedInput()
