//! AWS managed policies (arn:aws:iam::aws:policy/...), known to every account, read-only.

use super::state::ManagedPolicy;

pub struct AwsPolicy {
    pub name: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub create_date: f64,
    pub update_date: f64,
    pub document: &'static str,
}

pub const AWS_MANAGED_POLICIES: &[AwsPolicy] = &[
    AwsPolicy {
        name: "AdministratorAccess",
        path: "/",
        id: "ANPAIWMBCKSKIEE64ZLYK",
        version: "v1",
        description: "Provides full access to AWS services and resources.",
        create_date: 1_423_604_923.0,
        update_date: 1_423_604_923.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        id: "ANPAILL3HVNFSB6DCOWYQ",
        version: "v120",
        description: "Provides read-only access to AWS services and resources.",
        create_date: 1_423_604_918.0,
        update_date: 1_764_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnlyActions","Effect":"Allow","Action":["ec2:Describe*","ecs:Describe*","ecs:List*","ecr:BatchGet*","ecr:Describe*","ecr:Get*","ecr:List*","elasticloadbalancing:Describe*","iam:Get*","iam:List*","logs:Describe*","logs:Get*","logs:FilterLogEvents","cloudwatch:Describe*","cloudwatch:Get*","cloudwatch:List*","ssm:Describe*","ssm:Get*","ssm:List*","s3:Get*","s3:List*","sts:GetCallerIdentity"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonECSTaskExecutionRolePolicy",
        path: "/service-role/",
        id: "ANPAJG4T4G4PV56DE72PY",
        version: "v1",
        description: "Provides access to other AWS service resources that are required to run Amazon ECS tasks",
        create_date: 1_510_705_433.0,
        update_date: 1_510_705_433.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonEC2ContainerServiceforEC2Role",
        path: "/service-role/",
        id: "ANPAJLYJCVHC7TQHCSQDS",
        version: "v7",
        description: "Default policy for the Amazon EC2 Role for Amazon EC2 Container Service.",
        create_date: 1_426_615_442.0,
        update_date: 1_717_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeTags","ecs:CreateCluster","ecs:DeregisterContainerInstance","ecs:DiscoverPollEndpoint","ecs:Poll","ecs:RegisterContainerInstance","ecs:StartTelemetrySession","ecs:UpdateContainerInstancesState","ecs:Submit*","ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"},{"Effect":"Allow","Action":"ecs:TagResource","Resource":"*","Condition":{"StringEquals":{"ecs:CreateAction":["CreateCluster","RegisterContainerInstance"]}}}]}"#,
    },
    AwsPolicy {
        name: "AmazonECSInfrastructureRolePolicyForVolumes",
        path: "/service-role/",
        id: "ANPAZKAPJZG4MW35THVG2",
        version: "v3",
        description: "Provides Amazon ECS access to manage Amazon EBS volumes attached to ECS tasks.",
        create_date: 1_705_000_000.0,
        update_date: 1_720_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"CreateEBSManagedVolume","Effect":"Allow","Action":"ec2:CreateVolume","Resource":"arn:aws:ec2:*:*:volume/*","Condition":{"ArnLike":{"aws:RequestTag/AmazonECSCreated":"arn:aws:ecs:*:*:task/*"},"StringEquals":{"aws:RequestTag/AmazonECSManaged":"true"}}},{"Sid":"TagOnCreateVolume","Effect":"Allow","Action":"ec2:CreateTags","Resource":"arn:aws:ec2:*:*:volume/*","Condition":{"StringEquals":{"ec2:CreateAction":"CreateVolume"}}},{"Sid":"DescribeVolumesForLifecycle","Effect":"Allow","Action":["ec2:DescribeVolumes","ec2:DescribeAvailabilityZones"],"Resource":"*"},{"Sid":"ManageEBSVolumeLifecycle","Effect":"Allow","Action":["ec2:AttachVolume","ec2:DetachVolume","ec2:DeleteVolume"],"Resource":"arn:aws:ec2:*:*:volume/*","Condition":{"StringEquals":{"aws:ResourceTag/AmazonECSManaged":"true"}}}]}"#,
    },
    AwsPolicy {
        name: "AmazonEC2ContainerRegistryReadOnly",
        path: "/",
        id: "ANPAIFYZPA37OOHVIH7KQ",
        version: "v4",
        description: "Provides read-only access to Amazon EC2 Container Registry repositories.",
        create_date: 1_450_297_022.0,
        update_date: 1_700_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:GetRepositoryPolicy","ecr:DescribeRepositories","ecr:ListImages","ecr:DescribeImages","ecr:BatchGetImage","ecr:GetLifecyclePolicy","ecr:GetLifecyclePolicyPreview","ecr:ListTagsForResource","ecr:DescribeImageScanFindings"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "CloudWatchLogsFullAccess",
        path: "/",
        id: "ANPAJ3ZGNWK2R5HW5BQFO",
        version: "v2",
        description: "Provides full access to CloudWatch Logs",
        create_date: 1_423_604_920.0,
        update_date: 1_690_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"CloudWatchLogsFullAccess","Effect":"Allow","Action":["logs:*","cloudwatch:GenerateQuery"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonSSMReadOnlyAccess",
        path: "/",
        id: "ANPAJODSKQGGJTHRYZ5FC",
        version: "v1",
        description: "Provides read only access to Amazon SSM.",
        create_date: 1_432_848_433.0,
        update_date: 1_432_848_433.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:Describe*","ssm:Get*","ssm:List*"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonSSMManagedInstanceCore",
        path: "/",
        id: "ANPAIXSHM2BNB2D3AXXRU",
        version: "v2",
        description: "The policy for Amazon EC2 Role to enable AWS Systems Manager service core functionality.",
        create_date: 1_552_432_286.0,
        update_date: 1_680_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:DescribeAssociation","ssm:GetDeployablePatchSnapshotForInstance","ssm:GetDocument","ssm:DescribeDocument","ssm:GetManifest","ssm:GetParameter","ssm:GetParameters","ssm:ListAssociations","ssm:ListInstanceAssociations","ssm:PutInventory","ssm:PutComplianceItems","ssm:PutConfigurePackageResult","ssm:UpdateAssociationStatus","ssm:UpdateInstanceAssociationStatus","ssm:UpdateInstanceInformation"],"Resource":"*"},{"Effect":"Allow","Action":["ssmmessages:CreateControlChannel","ssmmessages:CreateDataChannel","ssmmessages:OpenControlChannel","ssmmessages:OpenDataChannel"],"Resource":"*"},{"Effect":"Allow","Action":["ec2messages:AcknowledgeMessage","ec2messages:DeleteMessage","ec2messages:FailMessage","ec2messages:GetEndpoint","ec2messages:GetMessages","ec2messages:SendReply"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonECS_FullAccess",
        path: "/",
        id: "ANPAJ7S7AN6YQPTJC7IFS",
        version: "v30",
        description: "Provides administrative access to Amazon ECS resources and enables ECS features through access to other AWS service resources.",
        create_date: 1_542_830_150.0,
        update_date: 1_730_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"ECSIntegrationsManagementPolicy","Effect":"Allow","Action":["application-autoscaling:*","autoscaling:*","cloudwatch:*","ec2:Describe*","ecs:*","elasticloadbalancing:*","iam:ListAttachedRolePolicies","iam:ListInstanceProfiles","iam:ListRoles","logs:*","servicediscovery:*","ssm:GetParameter","ssm:GetParameters","ssm:GetParametersByPath"],"Resource":"*"},{"Sid":"PassRoleForECS","Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringLike":{"iam:PassedToService":"ecs.amazonaws.com"}}}]}"#,
    },
    AwsPolicy {
        name: "AmazonEC2ContainerServiceRole",
        path: "/service-role/",
        id: "ANPAJO53W2XHNACG7V77Q",
        version: "v2",
        description: "Default policy for Amazon ECS service role.",
        create_date: 1_428_094_468.0,
        update_date: 1_470_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:AuthorizeSecurityGroupIngress","ec2:Describe*","elasticloadbalancing:DeregisterInstancesFromLoadBalancer","elasticloadbalancing:DeregisterTargets","elasticloadbalancing:Describe*","elasticloadbalancing:RegisterInstancesWithLoadBalancer","elasticloadbalancing:RegisterTargets"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonEC2ContainerServiceAutoscaleRole",
        path: "/service-role/",
        id: "ANPAIUAP3EGGGXXCPDQKK",
        version: "v1",
        description: "Policy to enable Task Autoscaling for Amazon EC2 Container Service",
        create_date: 1_463_072_548.0,
        update_date: 1_463_072_548.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:DescribeServices","ecs:UpdateService"],"Resource":["*"]},{"Effect":"Allow","Action":["cloudwatch:DescribeAlarms","cloudwatch:PutMetricAlarm"],"Resource":["*"]}]}"#,
    },
    AwsPolicy {
        name: "SecretsManagerReadWrite",
        path: "/",
        id: "ANPAI3VG7CI5BIQZQ6G2E",
        version: "v5",
        description: "Provides read/write access to AWS Secrets Manager via the AWS Management Console.",
        create_date: 1_522_713_541.0,
        update_date: 1_700_000_000.0,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:DescribeKey","kms:ListAliases","kms:ListKeys"],"Resource":"*"}]}"#,
    },
];

impl AwsPolicy {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::aws:policy{}{}", self.path, self.name)
    }

    pub fn to_policy(&self) -> ManagedPolicy {
        ManagedPolicy {
            policy_name: self.name.into(),
            path: self.path.into(),
            policy_id: self.id.into(),
            arn: self.arn(),
            document: self.document.into(),
            description: Some(self.description.into()),
            create_date: self.create_date,
            update_date: self.update_date,
            default_version_id: self.version.into(),
            tags: vec![],
        }
    }
}

pub fn aws_policy(arn: &str) -> Option<&'static AwsPolicy> {
    AWS_MANAGED_POLICIES.iter().find(|p| p.arn() == arn)
}
