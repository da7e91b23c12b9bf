// The types of the kinds kiso serves, as their Go structs in k8s.io/api
// declare them: one source for type checks at admission, strict field
// validation and (later) the published OpenAPI schema.
//
// A type starts at column 0 (`kind X` for a top-level kind, which also gets
// apiVersion, kind and metadata; `X : Base` to include Base's fields); its
// fields follow, indented, one per line: `name type`. Types: string, int32,
// int64, bool, float64, IntOrString, Quantity, Time (RFC 3339), MicroTime,
// bytes (base64), any (free-form JSON), enum(A|B) (a string with these values;
// "" is Go's zero value and always passes), []T, map[T] (string keys), or a
// struct type's name. Structs of sources kiso does not act on yet are `any`.
#include <string_view>

namespace kiso::api {

std::string_view SchemaText() {
  return R"(
ObjectMeta
  name string
  generateName string
  namespace string
  selfLink string
  uid string
  resourceVersion string
  generation int64
  creationTimestamp Time
  deletionTimestamp Time
  deletionGracePeriodSeconds int64
  labels map[string]
  annotations map[string]
  ownerReferences []OwnerReference
  finalizers []string
  managedFields []ManagedFieldsEntry

OwnerReference
  apiVersion string
  kind string
  name string
  uid string
  controller bool
  blockOwnerDeletion bool

ManagedFieldsEntry
  manager string
  operation enum(Apply|Update)
  apiVersion string
  time Time
  fieldsType string
  fieldsV1 any
  subresource string

LabelSelector
  matchLabels map[string]
  matchExpressions []LabelSelectorRequirement

LabelSelectorRequirement
  key string
  operator enum(In|NotIn|Exists|DoesNotExist)
  values []string

Condition
  type string
  status enum(True|False|Unknown)
  observedGeneration int64
  lastTransitionTime Time
  reason string
  message string

ObjectReference
  kind string
  namespace string
  name string
  uid string
  apiVersion string
  resourceVersion string
  fieldPath string

LocalObjectReference
  name string

TypedLocalObjectReference
  apiGroup string
  kind string
  name string

TypedObjectReference : TypedLocalObjectReference
  namespace string

# ---- Pods ----

kind Pod
  spec PodSpec
  status PodStatus

PodTemplateSpec
  metadata ObjectMeta
  spec PodSpec

PodSpec
  volumes []Volume
  initContainers []Container
  containers []Container
  ephemeralContainers []EphemeralContainer
  restartPolicy enum(Always|OnFailure|Never)
  terminationGracePeriodSeconds int64
  activeDeadlineSeconds int64
  dnsPolicy enum(ClusterFirstWithHostNet|ClusterFirst|Default|None)
  nodeSelector map[string]
  serviceAccountName string
  serviceAccount string
  automountServiceAccountToken bool
  nodeName string
  hostNetwork bool
  hostPID bool
  hostIPC bool
  shareProcessNamespace bool
  securityContext PodSecurityContext
  imagePullSecrets []LocalObjectReference
  hostname string
  subdomain string
  affinity Affinity
  schedulerName string
  tolerations []Toleration
  hostAliases []HostAlias
  priorityClassName string
  priority int32
  dnsConfig PodDNSConfig
  readinessGates []PodReadinessGate
  runtimeClassName string
  enableServiceLinks bool
  preemptionPolicy enum(PreemptLowerPriority|Never)
  overhead map[Quantity]
  topologySpreadConstraints []TopologySpreadConstraint
  setHostnameAsFQDN bool
  os PodOS
  hostUsers bool
  schedulingGates []PodSchedulingGate
  resourceClaims []PodResourceClaim
  resources ResourceRequirements

Container
  name string
  image string
  command []string
  args []string
  workingDir string
  ports []ContainerPort
  envFrom []EnvFromSource
  env []EnvVar
  resources ResourceRequirements
  resizePolicy []ContainerResizePolicy
  restartPolicy enum(Always)
  volumeMounts []VolumeMount
  volumeDevices []VolumeDevice
  livenessProbe Probe
  readinessProbe Probe
  startupProbe Probe
  lifecycle Lifecycle
  terminationMessagePath string
  terminationMessagePolicy enum(File|FallbackToLogsOnError)
  imagePullPolicy enum(Always|Never|IfNotPresent)
  securityContext SecurityContext
  stdin bool
  stdinOnce bool
  tty bool

EphemeralContainer : Container
  targetContainerName string

ContainerPort
  name string
  hostPort int32
  containerPort int32
  protocol enum(TCP|UDP|SCTP)
  hostIP string

EnvVar
  name string
  value string
  valueFrom EnvVarSource

EnvVarSource
  fieldRef ObjectFieldSelector
  resourceFieldRef ResourceFieldSelector
  configMapKeyRef ConfigMapKeySelector
  secretKeyRef SecretKeySelector

ObjectFieldSelector
  apiVersion string
  fieldPath string

ResourceFieldSelector
  containerName string
  resource string
  divisor Quantity

ConfigMapKeySelector
  name string
  key string
  optional bool

SecretKeySelector
  name string
  key string
  optional bool

EnvFromSource
  prefix string
  configMapRef ConfigMapEnvSource
  secretRef SecretEnvSource

ConfigMapEnvSource
  name string
  optional bool

SecretEnvSource
  name string
  optional bool

ResourceRequirements
  limits map[Quantity]
  requests map[Quantity]
  claims []ResourceClaim

ResourceClaim
  name string
  request string

ContainerResizePolicy
  resourceName string
  restartPolicy enum(NotRequired|RestartContainer)

VolumeMount
  name string
  readOnly bool
  recursiveReadOnly enum(Disabled|IfPossible|Enabled)
  mountPath string
  subPath string
  mountPropagation enum(None|HostToContainer|Bidirectional)
  subPathExpr string

VolumeDevice
  name string
  devicePath string

Probe
  exec ExecAction
  httpGet HTTPGetAction
  tcpSocket TCPSocketAction
  grpc GRPCAction
  initialDelaySeconds int32
  timeoutSeconds int32
  periodSeconds int32
  successThreshold int32
  failureThreshold int32
  terminationGracePeriodSeconds int64

ExecAction
  command []string

HTTPGetAction
  path string
  port IntOrString
  host string
  scheme enum(HTTP|HTTPS)
  httpHeaders []HTTPHeader

HTTPHeader
  name string
  value string

TCPSocketAction
  port IntOrString
  host string

GRPCAction
  port int32
  service string

Lifecycle
  postStart LifecycleHandler
  preStop LifecycleHandler

LifecycleHandler
  exec ExecAction
  httpGet HTTPGetAction
  tcpSocket TCPSocketAction
  sleep SleepAction

SleepAction
  seconds int64

SecurityContext
  capabilities Capabilities
  privileged bool
  seLinuxOptions SELinuxOptions
  windowsOptions WindowsSecurityContextOptions
  runAsUser int64
  runAsGroup int64
  runAsNonRoot bool
  readOnlyRootFilesystem bool
  allowPrivilegeEscalation bool
  procMount enum(Default|Unmasked)
  seccompProfile SeccompProfile
  appArmorProfile AppArmorProfile

Capabilities
  add []string
  drop []string

SELinuxOptions
  user string
  role string
  type string
  level string

WindowsSecurityContextOptions
  gmsaCredentialSpecName string
  gmsaCredentialSpec string
  runAsUserName string
  hostProcess bool

SeccompProfile
  type enum(Unconfined|RuntimeDefault|Localhost)
  localhostProfile string

AppArmorProfile
  type enum(Unconfined|RuntimeDefault|Localhost)
  localhostProfile string

PodSecurityContext
  seLinuxOptions SELinuxOptions
  windowsOptions WindowsSecurityContextOptions
  runAsUser int64
  runAsGroup int64
  runAsNonRoot bool
  supplementalGroups []int64
  supplementalGroupsPolicy enum(Merge|Strict)
  fsGroup int64
  sysctls []Sysctl
  fsGroupChangePolicy enum(OnRootMismatch|Always)
  seccompProfile SeccompProfile
  appArmorProfile AppArmorProfile
  seLinuxChangePolicy string

Sysctl
  name string
  value string

Affinity
  nodeAffinity NodeAffinity
  podAffinity PodAffinity
  podAntiAffinity PodAffinity

NodeAffinity
  requiredDuringSchedulingIgnoredDuringExecution NodeSelector
  preferredDuringSchedulingIgnoredDuringExecution []PreferredSchedulingTerm

NodeSelector
  nodeSelectorTerms []NodeSelectorTerm

NodeSelectorTerm
  matchExpressions []NodeSelectorRequirement
  matchFields []NodeSelectorRequirement

NodeSelectorRequirement
  key string
  operator enum(In|NotIn|Exists|DoesNotExist|Gt|Lt)
  values []string

PreferredSchedulingTerm
  weight int32
  preference NodeSelectorTerm

PodAffinity
  requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm
  preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm

PodAffinityTerm
  labelSelector LabelSelector
  namespaces []string
  topologyKey string
  namespaceSelector LabelSelector
  matchLabelKeys []string
  mismatchLabelKeys []string

WeightedPodAffinityTerm
  weight int32
  podAffinityTerm PodAffinityTerm

Toleration
  key string
  operator enum(Exists|Equal)
  value string
  effect enum(NoSchedule|PreferNoSchedule|NoExecute)
  tolerationSeconds int64

HostAlias
  ip string
  hostnames []string

PodDNSConfig
  nameservers []string
  searches []string
  options []PodDNSConfigOption

PodDNSConfigOption
  name string
  value string

PodReadinessGate
  conditionType string

TopologySpreadConstraint
  maxSkew int32
  topologyKey string
  whenUnsatisfiable enum(DoNotSchedule|ScheduleAnyway)
  labelSelector LabelSelector
  minDomains int32
  nodeAffinityPolicy enum(Ignore|Honor)
  nodeTaintsPolicy enum(Ignore|Honor)
  matchLabelKeys []string

PodOS
  name string

PodSchedulingGate
  name string

PodResourceClaim
  name string
  resourceClaimName string
  resourceClaimTemplateName string

Volume
  name string
  hostPath HostPathVolumeSource
  emptyDir EmptyDirVolumeSource
  gcePersistentDisk any
  awsElasticBlockStore any
  gitRepo any
  secret SecretVolumeSource
  nfs NFSVolumeSource
  iscsi any
  glusterfs any
  persistentVolumeClaim PersistentVolumeClaimVolumeSource
  rbd any
  flexVolume any
  cinder any
  cephfs any
  flocker any
  downwardAPI DownwardAPIVolumeSource
  fc any
  azureFile any
  configMap ConfigMapVolumeSource
  vsphereVolume any
  quobyte any
  azureDisk any
  photonPersistentDisk any
  projected ProjectedVolumeSource
  portworxVolume any
  scaleIO any
  storageos any
  csi CSIVolumeSource
  ephemeral EphemeralVolumeSource
  image ImageVolumeSource

HostPathVolumeSource
  path string
  type enum(DirectoryOrCreate|Directory|FileOrCreate|File|Socket|CharDevice|BlockDevice)

EmptyDirVolumeSource
  medium string
  sizeLimit Quantity

SecretVolumeSource
  secretName string
  items []KeyToPath
  defaultMode int32
  optional bool

ConfigMapVolumeSource
  name string
  items []KeyToPath
  defaultMode int32
  optional bool

KeyToPath
  key string
  path string
  mode int32

NFSVolumeSource
  server string
  path string
  readOnly bool

PersistentVolumeClaimVolumeSource
  claimName string
  readOnly bool

DownwardAPIVolumeSource
  items []DownwardAPIVolumeFile
  defaultMode int32

DownwardAPIVolumeFile
  path string
  fieldRef ObjectFieldSelector
  resourceFieldRef ResourceFieldSelector
  mode int32

ProjectedVolumeSource
  sources []VolumeProjection
  defaultMode int32

VolumeProjection
  secret SecretProjection
  downwardAPI DownwardAPIProjection
  configMap ConfigMapProjection
  serviceAccountToken ServiceAccountTokenProjection
  clusterTrustBundle any

SecretProjection
  name string
  items []KeyToPath
  optional bool

ConfigMapProjection
  name string
  items []KeyToPath
  optional bool

DownwardAPIProjection
  items []DownwardAPIVolumeFile

ServiceAccountTokenProjection
  audience string
  expirationSeconds int64
  path string

CSIVolumeSource
  driver string
  readOnly bool
  fsType string
  volumeAttributes map[string]
  nodePublishSecretRef LocalObjectReference

EphemeralVolumeSource
  volumeClaimTemplate PersistentVolumeClaimTemplate

PersistentVolumeClaimTemplate
  metadata ObjectMeta
  spec PersistentVolumeClaimSpec

ImageVolumeSource
  reference string
  pullPolicy enum(Always|Never|IfNotPresent)

PersistentVolumeClaim
  apiVersion string
  kind string
  metadata ObjectMeta
  spec PersistentVolumeClaimSpec
  status any

PersistentVolumeClaimSpec
  accessModes []string
  selector LabelSelector
  resources VolumeResourceRequirements
  volumeName string
  storageClassName string
  volumeMode enum(Block|Filesystem)
  dataSource TypedLocalObjectReference
  dataSourceRef TypedObjectReference
  volumeAttributesClassName string

VolumeResourceRequirements
  limits map[Quantity]
  requests map[Quantity]

PodStatus
  phase enum(Pending|Running|Succeeded|Failed|Unknown)
  conditions []PodCondition
  message string
  reason string
  nominatedNodeName string
  hostIP string
  hostIPs []HostIP
  podIP string
  podIPs []PodIP
  startTime Time
  initContainerStatuses []ContainerStatus
  containerStatuses []ContainerStatus
  qosClass enum(Guaranteed|Burstable|BestEffort)
  ephemeralContainerStatuses []ContainerStatus
  resize string
  resourceClaimStatuses any

PodCondition
  type string
  status enum(True|False|Unknown)
  lastProbeTime Time
  lastTransitionTime Time
  reason string
  message string

HostIP
  ip string

PodIP
  ip string

ContainerStatus
  name string
  state ContainerState
  lastState ContainerState
  ready bool
  restartCount int32
  image string
  imageID string
  containerID string
  started bool
  allocatedResources map[Quantity]
  resources ResourceRequirements
  volumeMounts []VolumeMountStatus
  user any
  allocatedResourcesStatus any

ContainerState
  waiting ContainerStateWaiting
  running ContainerStateRunning
  terminated ContainerStateTerminated

ContainerStateWaiting
  reason string
  message string

ContainerStateRunning
  startedAt Time

ContainerStateTerminated
  exitCode int32
  signal int32
  reason string
  message string
  startedAt Time
  finishedAt Time
  containerID string

VolumeMountStatus
  name string
  mountPath string
  readOnly bool
  recursiveReadOnly string

# ---- Services and their endpoints ----

kind Service
  spec ServiceSpec
  status ServiceStatus

ServiceSpec
  ports []ServicePort
  selector map[string]
  clusterIP string
  clusterIPs []string
  type enum(ClusterIP|NodePort|LoadBalancer|ExternalName)
  externalIPs []string
  sessionAffinity enum(ClientIP|None)
  loadBalancerIP string
  loadBalancerSourceRanges []string
  externalName string
  externalTrafficPolicy enum(Cluster|Local)
  healthCheckNodePort int32
  publishNotReadyAddresses bool
  sessionAffinityConfig SessionAffinityConfig
  ipFamilies []enum(IPv4|IPv6)
  ipFamilyPolicy enum(SingleStack|PreferDualStack|RequireDualStack)
  allocateLoadBalancerNodePorts bool
  loadBalancerClass string
  internalTrafficPolicy enum(Cluster|Local)
  trafficDistribution string

ServicePort
  name string
  protocol enum(TCP|UDP|SCTP)
  appProtocol string
  port int32
  targetPort IntOrString
  nodePort int32

SessionAffinityConfig
  clientIP ClientIPConfig

ClientIPConfig
  timeoutSeconds int32

ServiceStatus
  loadBalancer LoadBalancerStatus
  conditions []Condition

LoadBalancerStatus
  ingress []LoadBalancerIngress

LoadBalancerIngress
  ip string
  hostname string
  ipMode enum(VIP|Proxy)
  ports []PortStatus

PortStatus
  port int32
  protocol enum(TCP|UDP|SCTP)
  error string

kind Endpoints
  subsets []EndpointSubset

EndpointSubset
  addresses []EndpointAddress
  notReadyAddresses []EndpointAddress
  ports []EndpointPort

EndpointAddress
  ip string
  hostname string
  nodeName string
  targetRef ObjectReference

EndpointPort
  name string
  port int32
  protocol enum(TCP|UDP|SCTP)
  appProtocol string

# ---- Configuration and identity ----

kind ConfigMap
  data map[string]
  binaryData map[bytes]
  immutable bool

kind Secret
  data map[bytes]
  stringData map[string]
  type string
  immutable bool

kind ServiceAccount
  secrets []ObjectReference
  imagePullSecrets []LocalObjectReference
  automountServiceAccountToken bool

kind Event
  involvedObject ObjectReference
  reason string
  message string
  source EventSource
  firstTimestamp Time
  lastTimestamp Time
  count int32
  type string
  eventTime MicroTime
  series EventSeries
  action string
  related ObjectReference
  reportingComponent string
  reportingInstance string

EventSource
  component string
  host string

EventSeries
  count int32
  lastObservedTime MicroTime

# ---- Namespaces and nodes ----

kind Namespace
  spec NamespaceSpec
  status NamespaceStatus

NamespaceSpec
  finalizers []string

NamespaceStatus
  phase enum(Active|Terminating)
  conditions []NamespaceCondition

NamespaceCondition
  type string
  status enum(True|False|Unknown)
  lastTransitionTime Time
  reason string
  message string

kind Node
  spec NodeSpec
  status NodeStatus

NodeSpec
  podCIDR string
  podCIDRs []string
  providerID string
  unschedulable bool
  taints []Taint
  configSource any
  externalID string

Taint
  key string
  value string
  effect enum(NoSchedule|PreferNoSchedule|NoExecute)
  timeAdded Time

NodeStatus
  capacity map[Quantity]
  allocatable map[Quantity]
  phase enum(Pending|Running|Terminated)
  conditions []NodeCondition
  addresses []NodeAddress
  daemonEndpoints NodeDaemonEndpoints
  nodeInfo NodeSystemInfo
  images []ContainerImage
  volumesInUse []string
  volumesAttached []AttachedVolume
  config any
  runtimeHandlers []NodeRuntimeHandler
  features any

NodeCondition
  type string
  status enum(True|False|Unknown)
  lastHeartbeatTime Time
  lastTransitionTime Time
  reason string
  message string

NodeAddress
  type string
  address string

NodeDaemonEndpoints
  kubeletEndpoint DaemonEndpoint

DaemonEndpoint
  Port int32

NodeSystemInfo
  machineID string
  systemUUID string
  bootID string
  kernelVersion string
  osImage string
  containerRuntimeVersion string
  kubeletVersion string
  kubeProxyVersion string
  operatingSystem string
  architecture string
  swap any

ContainerImage
  names []string
  sizeBytes int64

AttachedVolume
  name string
  devicePath string

NodeRuntimeHandler
  name string
  features any

# ---- Workloads ----

kind ReplicationController
  spec ReplicationControllerSpec
  status ReplicationControllerStatus

ReplicationControllerSpec
  replicas int32
  minReadySeconds int32
  selector map[string]
  template PodTemplateSpec

ReplicationControllerStatus
  replicas int32
  fullyLabeledReplicas int32
  readyReplicas int32
  availableReplicas int32
  observedGeneration int64
  conditions []WorkloadCondition

WorkloadCondition
  type string
  status enum(True|False|Unknown)
  lastUpdateTime Time
  lastTransitionTime Time
  reason string
  message string

kind Deployment
  spec DeploymentSpec
  status DeploymentStatus

DeploymentSpec
  replicas int32
  selector LabelSelector
  template PodTemplateSpec
  strategy DeploymentStrategy
  minReadySeconds int32
  revisionHistoryLimit int32
  paused bool
  progressDeadlineSeconds int32

DeploymentStrategy
  type enum(Recreate|RollingUpdate)
  rollingUpdate RollingUpdateDeployment

RollingUpdateDeployment
  maxUnavailable IntOrString
  maxSurge IntOrString

DeploymentStatus
  observedGeneration int64
  replicas int32
  updatedReplicas int32
  readyReplicas int32
  availableReplicas int32
  unavailableReplicas int32
  terminatingReplicas int32
  conditions []WorkloadCondition
  collisionCount int32

kind ReplicaSet
  spec ReplicaSetSpec
  status ReplicaSetStatus

ReplicaSetSpec
  replicas int32
  minReadySeconds int32
  selector LabelSelector
  template PodTemplateSpec

ReplicaSetStatus
  replicas int32
  fullyLabeledReplicas int32
  readyReplicas int32
  availableReplicas int32
  terminatingReplicas int32
  observedGeneration int64
  conditions []WorkloadCondition

kind DaemonSet
  spec DaemonSetSpec
  status DaemonSetStatus

DaemonSetSpec
  selector LabelSelector
  template PodTemplateSpec
  updateStrategy DaemonSetUpdateStrategy
  minReadySeconds int32
  revisionHistoryLimit int32

DaemonSetUpdateStrategy
  type enum(RollingUpdate|OnDelete)
  rollingUpdate RollingUpdateDaemonSet

RollingUpdateDaemonSet
  maxUnavailable IntOrString
  maxSurge IntOrString

DaemonSetStatus
  currentNumberScheduled int32
  numberMisscheduled int32
  desiredNumberScheduled int32
  numberReady int32
  observedGeneration int64
  updatedNumberScheduled int32
  numberAvailable int32
  numberUnavailable int32
  collisionCount int32
  conditions []WorkloadCondition

kind StatefulSet
  spec StatefulSetSpec
  status StatefulSetStatus

StatefulSetSpec
  replicas int32
  selector LabelSelector
  template PodTemplateSpec
  volumeClaimTemplates []PersistentVolumeClaim
  serviceName string
  podManagementPolicy enum(OrderedReady|Parallel)
  updateStrategy StatefulSetUpdateStrategy
  revisionHistoryLimit int32
  minReadySeconds int32
  persistentVolumeClaimRetentionPolicy StatefulSetPersistentVolumeClaimRetentionPolicy
  ordinals StatefulSetOrdinals

StatefulSetUpdateStrategy
  type enum(RollingUpdate|OnDelete)
  rollingUpdate RollingUpdateStatefulSetStrategy

RollingUpdateStatefulSetStrategy
  partition int32
  maxUnavailable IntOrString

StatefulSetPersistentVolumeClaimRetentionPolicy
  whenDeleted enum(Retain|Delete)
  whenScaled enum(Retain|Delete)

StatefulSetOrdinals
  start int32

StatefulSetStatus
  observedGeneration int64
  replicas int32
  readyReplicas int32
  currentReplicas int32
  updatedReplicas int32
  currentRevision string
  updateRevision string
  collisionCount int32
  conditions []WorkloadCondition
  availableReplicas int32

kind Job
  spec JobSpec
  status JobStatus

JobSpec
  parallelism int32
  completions int32
  activeDeadlineSeconds int64
  podFailurePolicy PodFailurePolicy
  successPolicy SuccessPolicy
  backoffLimit int32
  backoffLimitPerIndex int32
  maxFailedIndexes int32
  selector LabelSelector
  manualSelector bool
  template PodTemplateSpec
  ttlSecondsAfterFinished int32
  completionMode enum(NonIndexed|Indexed)
  suspend bool
  podReplacementPolicy enum(TerminatingOrFailed|Failed)
  managedBy string

PodFailurePolicy
  rules []PodFailurePolicyRule

PodFailurePolicyRule
  action enum(FailJob|FailIndex|Ignore|Count)
  onExitCodes PodFailurePolicyOnExitCodesRequirement
  onPodConditions []PodFailurePolicyOnPodConditionsPattern

PodFailurePolicyOnExitCodesRequirement
  containerName string
  operator enum(In|NotIn)
  values []int32

PodFailurePolicyOnPodConditionsPattern
  type string
  status enum(True|False|Unknown)

SuccessPolicy
  rules []SuccessPolicyRule

SuccessPolicyRule
  succeededIndexes string
  succeededCount int32

JobStatus
  conditions []JobCondition
  startTime Time
  completionTime Time
  active int32
  succeeded int32
  failed int32
  terminating int32
  completedIndexes string
  failedIndexes string
  uncountedTerminatedPods UncountedTerminatedPods
  ready int32

JobCondition
  type string
  status enum(True|False|Unknown)
  lastProbeTime Time
  lastTransitionTime Time
  reason string
  message string

UncountedTerminatedPods
  succeeded []string
  failed []string

# ---- Coordination, RBAC, aggregation ----

kind Lease
  spec LeaseSpec

LeaseSpec
  holderIdentity string
  leaseDurationSeconds int32
  acquireTime MicroTime
  renewTime MicroTime
  leaseTransitions int32
  strategy string
  preferredHolder string

kind Role
  rules []PolicyRule

kind ClusterRole
  rules []PolicyRule
  aggregationRule AggregationRule

PolicyRule
  verbs []string
  apiGroups []string
  resources []string
  resourceNames []string
  nonResourceURLs []string

AggregationRule
  clusterRoleSelectors []LabelSelector

kind RoleBinding
  subjects []Subject
  roleRef RoleRef

kind ClusterRoleBinding
  subjects []Subject
  roleRef RoleRef

Subject
  kind string
  apiGroup string
  name string
  namespace string

RoleRef
  apiGroup string
  kind string
  name string

kind APIService
  spec APIServiceSpec
  status APIServiceStatus

APIServiceSpec
  service ServiceReference
  group string
  version string
  insecureSkipTLSVerify bool
  caBundle bytes
  groupPriorityMinimum int32
  versionPriority int32

ServiceReference
  namespace string
  name string
  port int32

APIServiceStatus
  conditions []Condition
)";
}

}  // namespace kiso::api
