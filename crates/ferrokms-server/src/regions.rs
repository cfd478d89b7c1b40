//! The Regions this service serves: AWS's commercial Regions unless the config lists its
//! own. A request signed for another Region is refused as AWS refuses a Region it does not
//! have, so invented Regions can neither escape quotas nor grow the tables kept per Region.

use ferrokms_core::ids::Region;

/// AWS's commercial Regions (partition `aws`, as botocore's partitions.json lists them in
/// 2026). Other partitions write other ARNs, which ferrokms does not.
pub const AWS_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Most Regions a config may list, so that the list itself stays small.
pub const MAX_REGIONS: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regions {
    served: Vec<Region>,
}

impl Default for Regions {
    fn default() -> Self {
        Regions {
            served: AWS_REGIONS
                .iter()
                .filter_map(|r| Region::parse(r))
                .collect(),
        }
    }
}

impl Regions {
    /// The config's list; every name must be a Region name.
    pub fn from_names(names: &[String]) -> Result<Self, String> {
        if names.is_empty() || names.len() > MAX_REGIONS {
            return Err(format!("regions must list 1 to {MAX_REGIONS} Regions"));
        }
        let served = names
            .iter()
            .map(|n| Region::parse(n).ok_or_else(|| format!("{n:?} is not a Region name")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Regions { served })
    }

    pub fn serves(&self, region: &Region) -> bool {
        self.served.contains(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_regions_are_served_and_invented_ones_are_not() {
        let regions = Regions::default();
        assert_eq!(regions.served.len(), AWS_REGIONS.len());
        for r in ["us-east-1", "eu-central-2", "mx-central-1"] {
            assert!(regions.serves(&Region::parse(r).unwrap()), "{r}");
        }
        for r in ["us-fake-1", "aa-bbbb-99"] {
            assert!(!regions.serves(&Region::parse(r).unwrap()), "{r}");
        }
        let own = Regions::from_names(&["us-fake-1".into()]).unwrap();
        assert!(own.serves(&Region::parse("us-fake-1").unwrap()));
        assert!(!own.serves(&Region::parse("us-east-1").unwrap()));
        assert!(Regions::from_names(&[]).is_err());
        assert!(Regions::from_names(&["Not A Region".into()]).is_err());
    }
}
