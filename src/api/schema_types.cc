// The types of the kinds kiso serves, as their Go structs in k8s.io/api
// declare them: one source for type checks at admission, strict field
// validation, the protobuf encoding and the published OpenAPI schema.
//
// A type starts at column 0 (`kind X` for a top-level kind, which also gets
// apiVersion, kind and `metadata ObjectMeta = 1`; `X : Base` to include
// Base's fields); its fields follow, indented, one per line, in the Go
// struct's order: `name type = N`, N being the field's protobuf number (as
// the `protobuf:` tag of the Go field says; a field without one is not in the
// protobuf encoding). `inline T = N` is an embedded struct: T's fields are
// this type's in JSON, and a message of type T at N in protobuf. Types:
// string, int32, int64, bool, float64, IntOrString, Quantity, Time (RFC
// 3339), MicroTime, bytes (base64), RawJSON (any JSON; bytes of JSON in
// protobuf), any (free-form JSON, not in protobuf), enum(A|B) (a string with
// these values; "" is Go's zero value and always passes), []T, map[T] (string
// keys), or a struct type's name. A `*` before a scalar type marks a Go
// pointer: its zero value is a value, kept when decoding protobuf, where other
// zero scalars are left out as `omitempty` leaves them out of JSON.
// proto_conformance_test checks every number and pointer against the
// descriptors compiled into the real kubectl.
#include <string_view>

namespace kiso::api {

std::string_view SchemaText() {
  return R"(
ObjectMeta
  name string = 1
  generateName string = 2
  namespace string = 3
  selfLink string = 4
  uid string = 5
  resourceVersion string = 6
  generation int64 = 7
  creationTimestamp Time = 8
  deletionTimestamp Time = 9
  deletionGracePeriodSeconds *int64 = 10
  labels map[string] = 11
  annotations map[string] = 12
  ownerReferences []OwnerReference = 13
  finalizers []string = 14
  managedFields []ManagedFieldsEntry = 17

ListMeta
  selfLink string = 1
  resourceVersion string = 2
  continue string = 3
  remainingItemCount *int64 = 4

kind Status
  metadata ListMeta = 1
  status enum(Success|Failure) = 2
  message string = 3
  reason string = 4
  details StatusDetails = 5
  code int32 = 6

StatusDetails
  name string = 1
  group string = 2
  kind string = 3
  uid string = 6
  causes []StatusCause = 4
  retryAfterSeconds int32 = 5

StatusCause
  reason string = 1
  message string = 2
  field string = 3

OwnerReference
  apiVersion string = 5
  kind string = 1
  name string = 3
  uid string = 4
  controller *bool = 6
  blockOwnerDeletion *bool = 7

ManagedFieldsEntry
  manager string = 1
  operation enum(Apply|Update) = 2
  apiVersion string = 3
  time Time = 4
  fieldsType string = 6
  fieldsV1 RawJSON = 7
  subresource string = 8

LabelSelector
  matchLabels map[string] = 1
  matchExpressions []LabelSelectorRequirement = 2

LabelSelectorRequirement
  key string = 1
  operator enum(In|NotIn|Exists|DoesNotExist) = 2
  values []string = 3

Condition
  type string = 1
  status enum(True|False|Unknown) = 2
  observedGeneration int64 = 3
  lastTransitionTime Time = 4
  reason string = 5
  message string = 6

ObjectReference
  kind string = 1
  namespace string = 2
  name string = 3
  uid string = 4
  apiVersion string = 5
  resourceVersion string = 6
  fieldPath string = 7

LocalObjectReference
  name string = 1

TypedLocalObjectReference
  apiGroup *string = 1
  kind string = 2
  name string = 3

TypedObjectReference : TypedLocalObjectReference
  namespace *string = 4

# ---- Pods ----

kind Pod
  spec PodSpec = 2
  status PodStatus = 3

PodTemplateSpec
  metadata ObjectMeta = 1
  spec PodSpec = 2

PodSpec
  volumes []Volume = 1
  initContainers []Container = 20
  containers []Container = 2
  ephemeralContainers []EphemeralContainer = 34
  restartPolicy enum(Always|OnFailure|Never) = 3
  terminationGracePeriodSeconds *int64 = 4
  activeDeadlineSeconds *int64 = 5
  dnsPolicy enum(ClusterFirstWithHostNet|ClusterFirst|Default|None) = 6
  nodeSelector map[string] = 7
  serviceAccountName string = 8
  serviceAccount string = 9
  automountServiceAccountToken *bool = 21
  nodeName string = 10
  hostNetwork bool = 11
  hostPID bool = 12
  hostIPC bool = 13
  shareProcessNamespace *bool = 27
  securityContext PodSecurityContext = 14
  imagePullSecrets []LocalObjectReference = 15
  hostname string = 16
  subdomain string = 17
  affinity Affinity = 18
  schedulerName string = 19
  tolerations []Toleration = 22
  hostAliases []HostAlias = 23
  priorityClassName string = 24
  priority *int32 = 25
  dnsConfig PodDNSConfig = 26
  readinessGates []PodReadinessGate = 28
  runtimeClassName *string = 29
  enableServiceLinks *bool = 30
  preemptionPolicy *enum(PreemptLowerPriority|Never) = 31
  overhead map[Quantity] = 32
  topologySpreadConstraints []TopologySpreadConstraint = 33
  setHostnameAsFQDN *bool = 35
  os PodOS = 36
  hostUsers *bool = 37
  schedulingGates []PodSchedulingGate = 38
  resourceClaims []PodResourceClaim = 39
  resources ResourceRequirements = 40

Container
  name string = 1
  image string = 2
  command []string = 3
  args []string = 4
  workingDir string = 5
  ports []ContainerPort = 6
  envFrom []EnvFromSource = 19
  env []EnvVar = 7
  resources ResourceRequirements = 8
  resizePolicy []ContainerResizePolicy = 23
  restartPolicy *enum(Always) = 24
  volumeMounts []VolumeMount = 9
  volumeDevices []VolumeDevice = 21
  livenessProbe Probe = 10
  readinessProbe Probe = 11
  startupProbe Probe = 22
  lifecycle Lifecycle = 12
  terminationMessagePath string = 13
  terminationMessagePolicy enum(File|FallbackToLogsOnError) = 20
  imagePullPolicy enum(Always|Never|IfNotPresent) = 14
  securityContext SecurityContext = 15
  stdin bool = 16
  stdinOnce bool = 17
  tty bool = 18

EphemeralContainer
  inline EphemeralContainerCommon = 1
  targetContainerName string = 2

EphemeralContainerCommon : Container

ContainerPort
  name string = 1
  hostPort int32 = 2
  containerPort int32 = 3
  protocol enum(TCP|UDP|SCTP) = 4
  hostIP string = 5

EnvVar
  name string = 1
  value string = 2
  valueFrom EnvVarSource = 3

EnvVarSource
  fieldRef ObjectFieldSelector = 1
  resourceFieldRef ResourceFieldSelector = 2
  configMapKeyRef ConfigMapKeySelector = 3
  secretKeyRef SecretKeySelector = 4

ObjectFieldSelector
  apiVersion string = 1
  fieldPath string = 2

ResourceFieldSelector
  containerName string = 1
  resource string = 2
  divisor Quantity = 3

ConfigMapKeySelector
  inline LocalObjectReference = 1
  key string = 2
  optional *bool = 3

SecretKeySelector
  inline LocalObjectReference = 1
  key string = 2
  optional *bool = 3

EnvFromSource
  prefix string = 1
  configMapRef ConfigMapEnvSource = 2
  secretRef SecretEnvSource = 3

ConfigMapEnvSource
  inline LocalObjectReference = 1
  optional *bool = 2

SecretEnvSource
  inline LocalObjectReference = 1
  optional *bool = 2

ResourceRequirements
  limits map[Quantity] = 1
  requests map[Quantity] = 2
  claims []ResourceClaim = 3

ResourceClaim
  name string = 1
  request string = 2

ContainerResizePolicy
  resourceName string = 1
  restartPolicy enum(NotRequired|RestartContainer) = 2

VolumeMount
  name string = 1
  readOnly bool = 2
  recursiveReadOnly *enum(Disabled|IfPossible|Enabled) = 7
  mountPath string = 3
  subPath string = 4
  mountPropagation *enum(None|HostToContainer|Bidirectional) = 5
  subPathExpr string = 6

VolumeDevice
  name string = 1
  devicePath string = 2

ProbeHandler
  exec ExecAction = 1
  httpGet HTTPGetAction = 2
  tcpSocket TCPSocketAction = 3
  grpc GRPCAction = 4

Probe
  inline ProbeHandler = 1
  initialDelaySeconds int32 = 2
  timeoutSeconds int32 = 3
  periodSeconds int32 = 4
  successThreshold int32 = 5
  failureThreshold int32 = 6
  terminationGracePeriodSeconds *int64 = 7

ExecAction
  command []string = 1

HTTPGetAction
  path string = 1
  port IntOrString = 2
  host string = 3
  scheme enum(HTTP|HTTPS) = 4
  httpHeaders []HTTPHeader = 5

HTTPHeader
  name string = 1
  value string = 2

TCPSocketAction
  port IntOrString = 1
  host string = 2

GRPCAction
  port int32 = 1
  service *string = 2

Lifecycle
  postStart LifecycleHandler = 1
  preStop LifecycleHandler = 2

LifecycleHandler
  exec ExecAction = 1
  httpGet HTTPGetAction = 2
  tcpSocket TCPSocketAction = 3
  sleep SleepAction = 4

SleepAction
  seconds int64 = 1

SecurityContext
  capabilities Capabilities = 1
  privileged *bool = 2
  seLinuxOptions SELinuxOptions = 3
  windowsOptions WindowsSecurityContextOptions = 10
  runAsUser *int64 = 4
  runAsGroup *int64 = 8
  runAsNonRoot *bool = 5
  readOnlyRootFilesystem *bool = 6
  allowPrivilegeEscalation *bool = 7
  procMount *enum(Default|Unmasked) = 9
  seccompProfile SeccompProfile = 11
  appArmorProfile AppArmorProfile = 12

Capabilities
  add []string = 1
  drop []string = 2

SELinuxOptions
  user string = 1
  role string = 2
  type string = 3
  level string = 4

WindowsSecurityContextOptions
  gmsaCredentialSpecName *string = 1
  gmsaCredentialSpec *string = 2
  runAsUserName *string = 3
  hostProcess *bool = 4

SeccompProfile
  type enum(Unconfined|RuntimeDefault|Localhost) = 1
  localhostProfile *string = 2

AppArmorProfile
  type enum(Unconfined|RuntimeDefault|Localhost) = 1
  localhostProfile *string = 2

PodSecurityContext
  seLinuxOptions SELinuxOptions = 1
  windowsOptions WindowsSecurityContextOptions = 8
  runAsUser *int64 = 2
  runAsGroup *int64 = 6
  runAsNonRoot *bool = 3
  supplementalGroups []int64 = 4
  supplementalGroupsPolicy *enum(Merge|Strict) = 12
  fsGroup *int64 = 5
  sysctls []Sysctl = 7
  fsGroupChangePolicy *enum(OnRootMismatch|Always) = 9
  seccompProfile SeccompProfile = 10
  appArmorProfile AppArmorProfile = 11
  seLinuxChangePolicy *string = 13

Sysctl
  name string = 1
  value string = 2

Affinity
  nodeAffinity NodeAffinity = 1
  podAffinity PodAffinity = 2
  podAntiAffinity PodAffinity = 3

NodeAffinity
  requiredDuringSchedulingIgnoredDuringExecution NodeSelector = 1
  preferredDuringSchedulingIgnoredDuringExecution []PreferredSchedulingTerm = 2

NodeSelector
  nodeSelectorTerms []NodeSelectorTerm = 1

NodeSelectorTerm
  matchExpressions []NodeSelectorRequirement = 1
  matchFields []NodeSelectorRequirement = 2

NodeSelectorRequirement
  key string = 1
  operator enum(In|NotIn|Exists|DoesNotExist|Gt|Lt) = 2
  values []string = 3

PreferredSchedulingTerm
  weight int32 = 1
  preference NodeSelectorTerm = 2

PodAffinity
  requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm = 1
  preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm = 2

PodAffinityTerm
  labelSelector LabelSelector = 1
  namespaces []string = 2
  topologyKey string = 3
  namespaceSelector LabelSelector = 4
  matchLabelKeys []string = 5
  mismatchLabelKeys []string = 6

WeightedPodAffinityTerm
  weight int32 = 1
  podAffinityTerm PodAffinityTerm = 2

Toleration
  key string = 1
  operator enum(Exists|Equal) = 2
  value string = 3
  effect enum(NoSchedule|PreferNoSchedule|NoExecute) = 4
  tolerationSeconds *int64 = 5

HostAlias
  ip string = 1
  hostnames []string = 2

PodDNSConfig
  nameservers []string = 1
  searches []string = 2
  options []PodDNSConfigOption = 3

PodDNSConfigOption
  name string = 1
  value *string = 2

PodReadinessGate
  conditionType string = 1

TopologySpreadConstraint
  maxSkew int32 = 1
  topologyKey string = 2
  whenUnsatisfiable enum(DoNotSchedule|ScheduleAnyway) = 3
  labelSelector LabelSelector = 4
  minDomains *int32 = 5
  nodeAffinityPolicy *enum(Ignore|Honor) = 6
  nodeTaintsPolicy *enum(Ignore|Honor) = 7
  matchLabelKeys []string = 8

PodOS
  name string = 1

PodSchedulingGate
  name string = 1

PodResourceClaim
  name string = 1
  resourceClaimName *string = 3
  resourceClaimTemplateName *string = 4

Volume
  name string = 1
  inline VolumeSource = 2

VolumeSource
  hostPath HostPathVolumeSource = 1
  emptyDir EmptyDirVolumeSource = 2
  gcePersistentDisk GCEPersistentDiskVolumeSource = 3
  awsElasticBlockStore AWSElasticBlockStoreVolumeSource = 4
  gitRepo GitRepoVolumeSource = 5
  secret SecretVolumeSource = 6
  nfs NFSVolumeSource = 7
  iscsi ISCSIVolumeSource = 8
  glusterfs GlusterfsVolumeSource = 9
  persistentVolumeClaim PersistentVolumeClaimVolumeSource = 10
  rbd RBDVolumeSource = 11
  flexVolume FlexVolumeSource = 12
  cinder CinderVolumeSource = 13
  cephfs CephFSVolumeSource = 14
  flocker FlockerVolumeSource = 15
  downwardAPI DownwardAPIVolumeSource = 16
  fc FCVolumeSource = 17
  azureFile AzureFileVolumeSource = 18
  configMap ConfigMapVolumeSource = 19
  vsphereVolume VsphereVirtualDiskVolumeSource = 20
  quobyte QuobyteVolumeSource = 21
  azureDisk AzureDiskVolumeSource = 22
  photonPersistentDisk PhotonPersistentDiskVolumeSource = 23
  projected ProjectedVolumeSource = 26
  portworxVolume PortworxVolumeSource = 24
  scaleIO ScaleIOVolumeSource = 25
  storageos StorageOSVolumeSource = 27
  csi CSIVolumeSource = 28
  ephemeral EphemeralVolumeSource = 29
  image ImageVolumeSource = 30

HostPathVolumeSource
  path string = 1
  type *enum(DirectoryOrCreate|Directory|FileOrCreate|File|Socket|CharDevice|BlockDevice) = 2

EmptyDirVolumeSource
  medium string = 1
  sizeLimit Quantity = 2

SecretVolumeSource
  secretName string = 1
  items []KeyToPath = 2
  defaultMode *int32 = 3
  optional *bool = 4

ConfigMapVolumeSource
  inline LocalObjectReference = 1
  items []KeyToPath = 2
  defaultMode *int32 = 3
  optional *bool = 4

KeyToPath
  key string = 1
  path string = 2
  mode *int32 = 3

NFSVolumeSource
  server string = 1
  path string = 2
  readOnly bool = 3

PersistentVolumeClaimVolumeSource
  claimName string = 1
  readOnly bool = 2

DownwardAPIVolumeSource
  items []DownwardAPIVolumeFile = 1
  defaultMode *int32 = 2

DownwardAPIVolumeFile
  path string = 1
  fieldRef ObjectFieldSelector = 2
  resourceFieldRef ResourceFieldSelector = 3
  mode *int32 = 4

ProjectedVolumeSource
  sources []VolumeProjection = 1
  defaultMode *int32 = 2

VolumeProjection
  secret SecretProjection = 1
  downwardAPI DownwardAPIProjection = 2
  configMap ConfigMapProjection = 3
  serviceAccountToken ServiceAccountTokenProjection = 4
  clusterTrustBundle ClusterTrustBundleProjection = 5

SecretProjection
  inline LocalObjectReference = 1
  items []KeyToPath = 2
  optional *bool = 4

ConfigMapProjection
  inline LocalObjectReference = 1
  items []KeyToPath = 2
  optional *bool = 4

DownwardAPIProjection
  items []DownwardAPIVolumeFile = 1

ServiceAccountTokenProjection
  audience string = 1
  expirationSeconds *int64 = 2
  path string = 3

CSIVolumeSource
  driver string = 1
  readOnly *bool = 2
  fsType *string = 3
  volumeAttributes map[string] = 4
  nodePublishSecretRef LocalObjectReference = 5

EphemeralVolumeSource
  volumeClaimTemplate PersistentVolumeClaimTemplate = 1

PersistentVolumeClaimTemplate
  metadata ObjectMeta = 1
  spec PersistentVolumeClaimSpec = 2

ImageVolumeSource
  reference string = 1
  pullPolicy enum(Always|Never|IfNotPresent) = 2

kind PersistentVolumeClaim
  spec PersistentVolumeClaimSpec = 2
  status PersistentVolumeClaimStatus = 3

kind PersistentVolume
  spec PersistentVolumeSpec = 2
  status PersistentVolumeStatus = 3

PersistentVolumeSpec
  capacity map[Quantity] = 1
  inline PersistentVolumeSource = 2
  accessModes []string = 3
  claimRef ObjectReference = 4
  persistentVolumeReclaimPolicy enum(Retain|Delete|Recycle) = 5
  storageClassName string = 6
  mountOptions []string = 7
  volumeMode *enum(Block|Filesystem) = 8
  nodeAffinity VolumeNodeAffinity = 9
  volumeAttributesClassName *string = 10

PersistentVolumeSource
  gcePersistentDisk GCEPersistentDiskVolumeSource = 1
  awsElasticBlockStore AWSElasticBlockStoreVolumeSource = 2
  hostPath HostPathVolumeSource = 3
  glusterfs GlusterfsPersistentVolumeSource = 4
  nfs NFSVolumeSource = 5
  rbd RBDPersistentVolumeSource = 6
  iscsi ISCSIPersistentVolumeSource = 7
  cinder CinderPersistentVolumeSource = 8
  cephfs CephFSPersistentVolumeSource = 9
  fc FCVolumeSource = 10
  flocker FlockerVolumeSource = 11
  flexVolume FlexPersistentVolumeSource = 12
  azureFile AzureFilePersistentVolumeSource = 13
  vsphereVolume VsphereVirtualDiskVolumeSource = 14
  quobyte QuobyteVolumeSource = 15
  azureDisk AzureDiskVolumeSource = 16
  photonPersistentDisk PhotonPersistentDiskVolumeSource = 17
  portworxVolume PortworxVolumeSource = 18
  scaleIO ScaleIOPersistentVolumeSource = 19
  local LocalVolumeSource = 20
  storageos StorageOSPersistentVolumeSource = 21
  csi CSIPersistentVolumeSource = 22

VolumeNodeAffinity
  required NodeSelector = 1

PersistentVolumeStatus
  phase enum(Pending|Available|Bound|Released|Failed) = 1
  message string = 2
  reason string = 3
  lastPhaseTransitionTime Time = 4

LocalVolumeSource
  path string = 1
  fsType *string = 2

SecretReference
  name string = 1
  namespace string = 2

CSIPersistentVolumeSource
  driver string = 1
  volumeHandle string = 2
  readOnly bool = 3
  fsType string = 4
  volumeAttributes map[string] = 5
  controllerPublishSecretRef SecretReference = 6
  nodeStageSecretRef SecretReference = 7
  nodePublishSecretRef SecretReference = 8
  controllerExpandSecretRef SecretReference = 9
  nodeExpandSecretRef SecretReference = 10

GlusterfsPersistentVolumeSource
  endpoints string = 1
  path string = 2
  readOnly bool = 3
  endpointsNamespace *string = 4

RBDPersistentVolumeSource
  monitors []string = 1
  image string = 2
  fsType string = 3
  pool string = 4
  user string = 5
  keyring string = 6
  secretRef SecretReference = 7
  readOnly bool = 8

ISCSIPersistentVolumeSource
  targetPortal string = 1
  iqn string = 2
  lun int32 = 3
  iscsiInterface string = 4
  fsType string = 5
  readOnly bool = 6
  portals []string = 7
  chapAuthDiscovery bool = 8
  chapAuthSession bool = 11
  secretRef SecretReference = 10
  initiatorName *string = 12

CinderPersistentVolumeSource
  volumeID string = 1
  fsType string = 2
  readOnly bool = 3
  secretRef SecretReference = 4

CephFSPersistentVolumeSource
  monitors []string = 1
  path string = 2
  user string = 3
  secretFile string = 4
  secretRef SecretReference = 5
  readOnly bool = 6

FlexPersistentVolumeSource
  driver string = 1
  fsType string = 2
  secretRef SecretReference = 3
  readOnly bool = 4
  options map[string] = 5

AzureFilePersistentVolumeSource
  secretName string = 1
  shareName string = 2
  readOnly bool = 3
  secretNamespace *string = 4

ScaleIOPersistentVolumeSource
  gateway string = 1
  system string = 2
  secretRef SecretReference = 3
  sslEnabled bool = 4
  protectionDomain string = 5
  storagePool string = 6
  storageMode string = 7
  volumeName string = 8
  fsType string = 9
  readOnly bool = 10

StorageOSPersistentVolumeSource
  volumeName string = 1
  volumeNamespace string = 2
  fsType string = 3
  readOnly bool = 4
  secretRef ObjectReference = 5

# metrics.k8s.io/v1beta1.
kind NodeMetrics
  timestamp Time = 2
  window Duration = 3
  usage map[Quantity] = 4

kind PodMetrics
  timestamp Time = 2
  window Duration = 3
  containers []ContainerMetrics = 4

ContainerMetrics
  name string = 1
  usage map[Quantity] = 2

kind StorageClass
  provisioner string = 2
  parameters map[string] = 3
  reclaimPolicy *enum(Retain|Delete|Recycle) = 4
  mountOptions []string = 5
  allowVolumeExpansion *bool = 6
  volumeBindingMode *enum(Immediate|WaitForFirstConsumer) = 7
  allowedTopologies []TopologySelectorTerm = 8

TopologySelectorTerm
  matchLabelExpressions []TopologySelectorLabelRequirement = 1

TopologySelectorLabelRequirement
  key string = 1
  values []string = 2

PersistentVolumeClaimSpec
  accessModes []string = 1
  selector LabelSelector = 4
  resources VolumeResourceRequirements = 2
  volumeName string = 3
  storageClassName *string = 5
  volumeMode *enum(Block|Filesystem) = 6
  dataSource TypedLocalObjectReference = 7
  dataSourceRef TypedObjectReference = 8
  volumeAttributesClassName *string = 9

VolumeResourceRequirements
  limits map[Quantity] = 1
  requests map[Quantity] = 2

PodStatus
  phase enum(Pending|Running|Succeeded|Failed|Unknown) = 1
  conditions []PodCondition = 2
  message string = 3
  reason string = 4
  nominatedNodeName string = 11
  hostIP string = 5
  hostIPs []HostIP = 16
  podIP string = 6
  podIPs []PodIP = 12
  startTime Time = 7
  initContainerStatuses []ContainerStatus = 10
  containerStatuses []ContainerStatus = 8
  qosClass enum(Guaranteed|Burstable|BestEffort) = 9
  ephemeralContainerStatuses []ContainerStatus = 13
  resize string = 14
  resourceClaimStatuses []PodResourceClaimStatus = 15

PodCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastProbeTime Time = 3
  lastTransitionTime Time = 4
  reason string = 5
  message string = 6

HostIP
  ip string = 1

PodIP
  ip string = 1

ContainerStatus
  name string = 1
  state ContainerState = 2
  lastState ContainerState = 3
  ready bool = 4
  restartCount int32 = 5
  image string = 6
  imageID string = 7
  containerID string = 8
  started *bool = 9
  allocatedResources map[Quantity] = 10
  resources ResourceRequirements = 11
  volumeMounts []VolumeMountStatus = 12
  user ContainerUser = 13
  allocatedResourcesStatus []ResourceStatus = 14

ContainerState
  waiting ContainerStateWaiting = 1
  running ContainerStateRunning = 2
  terminated ContainerStateTerminated = 3

ContainerStateWaiting
  reason string = 1
  message string = 2

ContainerStateRunning
  startedAt Time = 1

ContainerStateTerminated
  exitCode int32 = 1
  signal int32 = 2
  reason string = 3
  message string = 4
  startedAt Time = 5
  finishedAt Time = 6
  containerID string = 7

VolumeMountStatus
  name string = 1
  mountPath string = 2
  readOnly bool = 3
  recursiveReadOnly *string = 4

# ---- Services and their endpoints ----

kind Service
  spec ServiceSpec = 2
  status ServiceStatus = 3

ServiceSpec
  ports []ServicePort = 1
  selector map[string] = 2
  clusterIP string = 3
  clusterIPs []string = 18
  type enum(ClusterIP|NodePort|LoadBalancer|ExternalName) = 4
  externalIPs []string = 5
  sessionAffinity enum(ClientIP|None) = 7
  loadBalancerIP string = 8
  loadBalancerSourceRanges []string = 9
  externalName string = 10
  externalTrafficPolicy enum(Cluster|Local) = 11
  healthCheckNodePort int32 = 12
  publishNotReadyAddresses bool = 13
  sessionAffinityConfig SessionAffinityConfig = 14
  ipFamilies []enum(IPv4|IPv6) = 19
  ipFamilyPolicy *enum(SingleStack|PreferDualStack|RequireDualStack) = 17
  allocateLoadBalancerNodePorts *bool = 20
  loadBalancerClass *string = 21
  internalTrafficPolicy *enum(Cluster|Local) = 22
  trafficDistribution *string = 23

ServicePort
  name string = 1
  protocol enum(TCP|UDP|SCTP) = 2
  appProtocol *string = 6
  port int32 = 3
  targetPort IntOrString = 4
  nodePort int32 = 5

SessionAffinityConfig
  clientIP ClientIPConfig = 1

ClientIPConfig
  timeoutSeconds *int32 = 1

ServiceStatus
  loadBalancer LoadBalancerStatus = 1
  conditions []Condition = 2

LoadBalancerStatus
  ingress []LoadBalancerIngress = 1

LoadBalancerIngress
  ip string = 1
  hostname string = 2
  ipMode *enum(VIP|Proxy) = 3
  ports []PortStatus = 4

PortStatus
  port int32 = 1
  protocol enum(TCP|UDP|SCTP) = 2
  error *string = 3

kind Endpoints
  subsets []EndpointSubset = 2

EndpointSubset
  addresses []EndpointAddress = 1
  notReadyAddresses []EndpointAddress = 2
  ports []EndpointPort = 3

EndpointAddress
  ip string = 1
  hostname string = 3
  nodeName *string = 4
  targetRef ObjectReference = 2

EndpointPort
  name string = 1
  port int32 = 2
  protocol enum(TCP|UDP|SCTP) = 3
  appProtocol *string = 4

# discovery.k8s.io/v1: what kube-proxy and CoreDNS read.
kind EndpointSlice
  addressType enum(IPv4|IPv6|FQDN) = 4
  endpoints []Endpoint = 2
  ports []EndpointPort@discovery.v1 = 3

Endpoint
  addresses []string = 1
  conditions EndpointConditions = 2
  hostname *string = 3
  targetRef ObjectReference = 4
  deprecatedTopology map[string] = 5
  nodeName *string = 6
  zone *string = 7
  hints EndpointHints = 8

EndpointConditions
  ready *bool = 1
  serving *bool = 2
  terminating *bool = 3

EndpointHints
  forZones []ForZone = 1

ForZone
  name string = 1

EndpointPort@discovery.v1
  name *string = 1
  protocol *enum(TCP|UDP|SCTP) = 2
  port *int32 = 3
  appProtocol *string = 4

# ---- Configuration and identity ----

kind ConfigMap
  data map[string] = 2
  binaryData map[bytes] = 3
  immutable *bool = 4

kind Secret
  data map[bytes] = 2
  stringData map[string] = 4
  type string = 3
  immutable *bool = 5

kind ServiceAccount
  secrets []ObjectReference = 2
  imagePullSecrets []LocalObjectReference = 3
  automountServiceAccountToken *bool = 4

kind Event
  involvedObject ObjectReference = 2
  reason string = 3
  message string = 4
  source EventSource = 5
  firstTimestamp Time = 6
  lastTimestamp Time = 7
  count int32 = 8
  type string = 9
  eventTime MicroTime = 10
  series EventSeries = 11
  action string = 12
  related ObjectReference = 13
  reportingComponent string = 14
  reportingInstance string = 15

EventSource
  component string = 1
  host string = 2

# events.k8s.io/v1: core/v1's Events in the newer shape (stored as core/v1, api/conversion.cc).
kind Event@events.v1
  eventTime MicroTime = 2
  series EventSeries = 3
  reportingController string = 4
  reportingInstance string = 5
  action string = 6
  reason string = 7
  regarding ObjectReference = 8
  related ObjectReference = 9
  note string = 10
  type string = 11
  deprecatedSource EventSource = 12
  deprecatedFirstTimestamp Time = 13
  deprecatedLastTimestamp Time = 14
  deprecatedCount int32 = 15

EventSeries
  count int32 = 1
  lastObservedTime MicroTime = 2

# ---- Namespaces and nodes ----

kind Namespace
  spec NamespaceSpec = 2
  status NamespaceStatus = 3

NamespaceSpec
  finalizers []string = 1

NamespaceStatus
  phase enum(Active|Terminating) = 1
  conditions []NamespaceCondition = 2

NamespaceCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastTransitionTime Time = 4
  reason string = 5
  message string = 6

kind Node
  spec NodeSpec = 2
  status NodeStatus = 3

NodeSpec
  podCIDR string = 1
  podCIDRs []string = 7
  providerID string = 3
  unschedulable bool = 4
  taints []Taint = 5
  configSource NodeConfigSource = 6
  externalID string = 2

Taint
  key string = 1
  value string = 2
  effect enum(NoSchedule|PreferNoSchedule|NoExecute) = 3
  timeAdded Time = 4

NodeStatus
  capacity map[Quantity] = 1
  allocatable map[Quantity] = 2
  phase enum(Pending|Running|Terminated) = 3
  conditions []NodeCondition = 4
  addresses []NodeAddress = 5
  daemonEndpoints NodeDaemonEndpoints = 6
  nodeInfo NodeSystemInfo = 7
  images []ContainerImage = 8
  volumesInUse []string = 9
  volumesAttached []AttachedVolume = 10
  config NodeConfigStatus = 11
  runtimeHandlers []NodeRuntimeHandler = 12
  features NodeFeatures = 13

NodeCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastHeartbeatTime Time = 3
  lastTransitionTime Time = 4
  reason string = 5
  message string = 6

NodeAddress
  type string = 1
  address string = 2

NodeDaemonEndpoints
  kubeletEndpoint DaemonEndpoint = 1

DaemonEndpoint
  Port int32 = 1

NodeSystemInfo
  machineID string = 1
  systemUUID string = 2
  bootID string = 3
  kernelVersion string = 4
  osImage string = 5
  containerRuntimeVersion string = 6
  kubeletVersion string = 7
  kubeProxyVersion string = 8
  operatingSystem string = 9
  architecture string = 10
  swap any

ContainerImage
  names []string = 1
  sizeBytes int64 = 2

AttachedVolume
  name string = 1
  devicePath string = 2

NodeRuntimeHandler
  name string = 1
  features NodeRuntimeHandlerFeatures = 2

# ---- Workloads ----

kind ReplicationController
  spec ReplicationControllerSpec = 2
  status ReplicationControllerStatus = 3

ReplicationControllerSpec
  replicas *int32 = 1
  minReadySeconds int32 = 4
  selector map[string] = 2
  template PodTemplateSpec = 3

ReplicationControllerStatus
  replicas int32 = 1
  fullyLabeledReplicas int32 = 2
  readyReplicas int32 = 4
  availableReplicas int32 = 5
  observedGeneration int64 = 3
  conditions []ReplicationControllerCondition = 6

ReplicationControllerCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastTransitionTime Time = 3
  reason string = 4
  message string = 5

kind Deployment
  spec DeploymentSpec = 2
  status DeploymentStatus = 3

DeploymentSpec
  replicas *int32 = 1
  selector LabelSelector = 2
  template PodTemplateSpec = 3
  strategy DeploymentStrategy = 4
  minReadySeconds int32 = 5
  revisionHistoryLimit *int32 = 6
  paused bool = 7
  progressDeadlineSeconds *int32 = 9

DeploymentStrategy
  type enum(Recreate|RollingUpdate) = 1
  rollingUpdate RollingUpdateDeployment = 2

RollingUpdateDeployment
  maxUnavailable IntOrString = 1
  maxSurge IntOrString = 2

DeploymentStatus
  observedGeneration int64 = 1
  replicas int32 = 2
  updatedReplicas int32 = 3
  readyReplicas int32 = 7
  availableReplicas int32 = 4
  unavailableReplicas int32 = 5
  terminatingReplicas int32
  conditions []DeploymentCondition = 6
  collisionCount *int32 = 8

DeploymentCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastUpdateTime Time = 6
  lastTransitionTime Time = 7
  reason string = 4
  message string = 5

kind ReplicaSet
  spec ReplicaSetSpec = 2
  status ReplicaSetStatus = 3

ReplicaSetSpec
  replicas *int32 = 1
  minReadySeconds int32 = 4
  selector LabelSelector = 2
  template PodTemplateSpec = 3

ReplicaSetStatus
  replicas int32 = 1
  fullyLabeledReplicas int32 = 2
  readyReplicas int32 = 4
  availableReplicas int32 = 5
  terminatingReplicas int32
  observedGeneration int64 = 3
  conditions []ReplicaSetCondition = 6

ReplicaSetCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastTransitionTime Time = 3
  reason string = 4
  message string = 5

kind DaemonSet
  spec DaemonSetSpec = 2
  status DaemonSetStatus = 3

DaemonSetSpec
  selector LabelSelector = 1
  template PodTemplateSpec = 2
  updateStrategy DaemonSetUpdateStrategy = 3
  minReadySeconds int32 = 4
  revisionHistoryLimit *int32 = 6

DaemonSetUpdateStrategy
  type enum(RollingUpdate|OnDelete) = 1
  rollingUpdate RollingUpdateDaemonSet = 2

RollingUpdateDaemonSet
  maxUnavailable IntOrString = 1
  maxSurge IntOrString = 2

DaemonSetStatus
  currentNumberScheduled int32 = 1
  numberMisscheduled int32 = 2
  desiredNumberScheduled int32 = 3
  numberReady int32 = 4
  observedGeneration int64 = 5
  updatedNumberScheduled int32 = 6
  numberAvailable int32 = 7
  numberUnavailable int32 = 8
  collisionCount *int32 = 9
  conditions []DaemonSetCondition = 10

DaemonSetCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastTransitionTime Time = 3
  reason string = 4
  message string = 5

kind ControllerRevision
  data RawJSON = 2
  revision int64 = 3

kind StatefulSet
  spec StatefulSetSpec = 2
  status StatefulSetStatus = 3

StatefulSetSpec
  replicas *int32 = 1
  selector LabelSelector = 2
  template PodTemplateSpec = 3
  volumeClaimTemplates []PersistentVolumeClaim = 4
  serviceName string = 5
  podManagementPolicy enum(OrderedReady|Parallel) = 6
  updateStrategy StatefulSetUpdateStrategy = 7
  revisionHistoryLimit *int32 = 8
  minReadySeconds int32 = 9
  persistentVolumeClaimRetentionPolicy StatefulSetPersistentVolumeClaimRetentionPolicy = 10
  ordinals StatefulSetOrdinals = 11

StatefulSetUpdateStrategy
  type enum(RollingUpdate|OnDelete) = 1
  rollingUpdate RollingUpdateStatefulSetStrategy = 2

RollingUpdateStatefulSetStrategy
  partition *int32 = 1
  maxUnavailable IntOrString = 2

StatefulSetPersistentVolumeClaimRetentionPolicy
  whenDeleted enum(Retain|Delete) = 1
  whenScaled enum(Retain|Delete) = 2

StatefulSetOrdinals
  start int32 = 1

StatefulSetStatus
  observedGeneration int64 = 1
  replicas int32 = 2
  readyReplicas int32 = 3
  currentReplicas int32 = 4
  updatedReplicas int32 = 5
  currentRevision string = 6
  updateRevision string = 7
  collisionCount *int32 = 9
  conditions []StatefulSetCondition = 10
  availableReplicas int32 = 11

StatefulSetCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastTransitionTime Time = 3
  reason string = 4
  message string = 5

kind Job
  spec JobSpec = 2
  status JobStatus = 3

JobSpec
  parallelism *int32 = 1
  completions *int32 = 2
  activeDeadlineSeconds *int64 = 3
  podFailurePolicy PodFailurePolicy = 11
  successPolicy SuccessPolicy = 16
  backoffLimit *int32 = 7
  backoffLimitPerIndex *int32 = 12
  maxFailedIndexes *int32 = 13
  selector LabelSelector = 4
  manualSelector *bool = 5
  template PodTemplateSpec = 6
  ttlSecondsAfterFinished *int32 = 8
  completionMode *enum(NonIndexed|Indexed) = 9
  suspend *bool = 10
  podReplacementPolicy *enum(TerminatingOrFailed|Failed) = 14
  managedBy *string = 15

PodFailurePolicy
  rules []PodFailurePolicyRule = 1

PodFailurePolicyRule
  action enum(FailJob|FailIndex|Ignore|Count) = 1
  onExitCodes PodFailurePolicyOnExitCodesRequirement = 2
  onPodConditions []PodFailurePolicyOnPodConditionsPattern = 3

PodFailurePolicyOnExitCodesRequirement
  containerName *string = 1
  operator enum(In|NotIn) = 2
  values []int32 = 3

PodFailurePolicyOnPodConditionsPattern
  type string = 1
  status enum(True|False|Unknown) = 2

SuccessPolicy
  rules []SuccessPolicyRule = 1

SuccessPolicyRule
  succeededIndexes *string = 1
  succeededCount *int32 = 2

JobStatus
  conditions []JobCondition = 1
  startTime Time = 2
  completionTime Time = 3
  active int32 = 4
  succeeded int32 = 5
  failed int32 = 6
  terminating *int32 = 11
  completedIndexes string = 7
  failedIndexes *string = 10
  uncountedTerminatedPods UncountedTerminatedPods = 8
  ready *int32 = 9

JobCondition
  type string = 1
  status enum(True|False|Unknown) = 2
  lastProbeTime Time = 3
  lastTransitionTime Time = 4
  reason string = 5
  message string = 6

UncountedTerminatedPods
  succeeded []string = 1
  failed []string = 2

# ---- Coordination, RBAC, aggregation ----

kind Lease
  spec LeaseSpec = 2

LeaseSpec
  holderIdentity *string = 1
  leaseDurationSeconds *int32 = 2
  acquireTime MicroTime = 3
  renewTime MicroTime = 4
  leaseTransitions *int32 = 5
  strategy *string = 6
  preferredHolder *string = 7

kind Role
  rules []PolicyRule = 2

kind ClusterRole
  rules []PolicyRule = 2
  aggregationRule AggregationRule = 3

PolicyRule
  verbs []string = 1
  apiGroups []string = 2
  resources []string = 3
  resourceNames []string = 4
  nonResourceURLs []string = 5

AggregationRule
  clusterRoleSelectors []LabelSelector = 1

kind RoleBinding
  subjects []Subject = 2
  roleRef RoleRef = 3

kind ClusterRoleBinding
  subjects []Subject = 2
  roleRef RoleRef = 3

Subject
  kind string = 1
  apiGroup string = 2
  name string = 3
  namespace string = 4

RoleRef
  apiGroup string = 1
  kind string = 2
  name string = 3

kind APIService
  spec APIServiceSpec
  status APIServiceStatus

APIServiceSpec
  service APIServiceReference
  group string
  version string
  insecureSkipTLSVerify bool
  caBundle bytes
  groupPriorityMinimum int32
  versionPriority int32

APIServiceReference
  namespace string
  name string
  port int32

APIServiceStatus
  conditions []Condition

kind CustomResourceDefinition
  spec CustomResourceDefinitionSpec
  status CustomResourceDefinitionStatus

CustomResourceDefinitionSpec
  group string
  names CustomResourceDefinitionNames
  scope string
  versions []CustomResourceDefinitionVersion
  conversion CustomResourceConversion
  preserveUnknownFields bool

CustomResourceDefinitionNames
  plural string
  singular string
  shortNames []string
  kind string
  listKind string
  categories []string

CustomResourceDefinitionVersion
  name string
  served bool
  storage bool
  deprecated bool
  deprecationWarning *string
  schema CustomResourceValidation
  subresources CustomResourceSubresources
  additionalPrinterColumns []CustomResourceColumnDefinition
  selectableFields []SelectableField

SelectableField
  jsonPath string

CustomResourceValidation
  openAPIV3Schema JSONSchemaProps

CustomResourceSubresources
  status any
  scale CustomResourceSubresourceScale

CustomResourceSubresourceScale
  specReplicasPath string
  statusReplicasPath string
  labelSelectorPath *string

CustomResourceColumnDefinition
  name string
  type string
  format string
  description string
  priority int32
  jsonPath string

CustomResourceConversion
  strategy string
  webhook any

JSONSchemaProps
  id string
  $schema string
  $ref *string
  description string
  type string
  format string
  title string
  default any
  maximum *float64
  exclusiveMaximum bool
  minimum *float64
  exclusiveMinimum bool
  maxLength *int64
  minLength *int64
  pattern string
  maxItems *int64
  minItems *int64
  uniqueItems bool
  multipleOf *float64
  enum []any
  maxProperties *int64
  minProperties *int64
  required []string
  items any
  allOf []JSONSchemaProps
  oneOf []JSONSchemaProps
  anyOf []JSONSchemaProps
  not JSONSchemaProps
  properties map[JSONSchemaProps]
  additionalProperties any
  patternProperties map[JSONSchemaProps]
  dependencies any
  additionalItems any
  definitions map[JSONSchemaProps]
  externalDocs any
  example any
  nullable bool
  x-kubernetes-preserve-unknown-fields *bool
  x-kubernetes-embedded-resource bool
  x-kubernetes-int-or-string bool
  x-kubernetes-list-map-keys []string
  x-kubernetes-list-type *string
  x-kubernetes-map-type *string
  x-kubernetes-validations any

CustomResourceDefinitionStatus
  conditions []CustomResourceDefinitionCondition
  acceptedNames CustomResourceDefinitionNames
  storedVersions []string

CustomResourceDefinitionCondition
  type string
  status string
  lastTransitionTime Time
  reason string
  message string

GCEPersistentDiskVolumeSource
  pdName string = 1
  fsType string = 2
  partition int32 = 3
  readOnly bool = 4

AWSElasticBlockStoreVolumeSource
  volumeID string = 1
  fsType string = 2
  partition int32 = 3
  readOnly bool = 4

GitRepoVolumeSource
  repository string = 1
  revision string = 2
  directory string = 3

ISCSIVolumeSource
  targetPortal string = 1
  iqn string = 2
  lun int32 = 3
  iscsiInterface string = 4
  fsType string = 5
  readOnly bool = 6
  portals []string = 7
  chapAuthDiscovery bool = 8
  chapAuthSession bool = 11
  secretRef LocalObjectReference = 10
  initiatorName *string = 12

GlusterfsVolumeSource
  endpoints string = 1
  path string = 2
  readOnly bool = 3

RBDVolumeSource
  monitors []string = 1
  image string = 2
  fsType string = 3
  pool string = 4
  user string = 5
  keyring string = 6
  secretRef LocalObjectReference = 7
  readOnly bool = 8

FlexVolumeSource
  driver string = 1
  fsType string = 2
  secretRef LocalObjectReference = 3
  readOnly bool = 4
  options map[string] = 5

CinderVolumeSource
  volumeID string = 1
  fsType string = 2
  readOnly bool = 3
  secretRef LocalObjectReference = 4

CephFSVolumeSource
  monitors []string = 1
  path string = 2
  user string = 3
  secretFile string = 4
  secretRef LocalObjectReference = 5
  readOnly bool = 6

FlockerVolumeSource
  datasetName string = 1
  datasetUUID string = 2

FCVolumeSource
  targetWWNs []string = 1
  lun *int32 = 2
  fsType string = 3
  readOnly bool = 4
  wwids []string = 5

AzureFileVolumeSource
  secretName string = 1
  shareName string = 2
  readOnly bool = 3

VsphereVirtualDiskVolumeSource
  volumePath string = 1
  fsType string = 2
  storagePolicyName string = 3
  storagePolicyID string = 4

QuobyteVolumeSource
  registry string = 1
  volume string = 2
  readOnly bool = 3
  user string = 4
  group string = 5
  tenant string = 6

AzureDiskVolumeSource
  diskName string = 1
  diskURI string = 2
  cachingMode *string = 3
  fsType *string = 4
  readOnly *bool = 5
  kind *string = 6

PhotonPersistentDiskVolumeSource
  pdID string = 1
  fsType string = 2

PortworxVolumeSource
  volumeID string = 1
  fsType string = 2
  readOnly bool = 3

ScaleIOVolumeSource
  gateway string = 1
  system string = 2
  secretRef LocalObjectReference = 3
  sslEnabled bool = 4
  protectionDomain string = 5
  storagePool string = 6
  storageMode string = 7
  volumeName string = 8
  fsType string = 9
  readOnly bool = 10

StorageOSVolumeSource
  volumeName string = 1
  volumeNamespace string = 2
  fsType string = 3
  readOnly bool = 4
  secretRef LocalObjectReference = 5

ClusterTrustBundleProjection
  name *string = 1
  signerName *string = 2
  labelSelector LabelSelector = 3
  optional *bool = 5
  path string = 4

PersistentVolumeClaimStatus
  phase string = 1
  accessModes []string = 2
  capacity map[Quantity] = 3
  conditions []PersistentVolumeClaimCondition = 4
  allocatedResources map[Quantity] = 5
  allocatedResourceStatuses map[string] = 7
  currentVolumeAttributesClassName *string = 8
  modifyVolumeStatus ModifyVolumeStatus = 9

PodResourceClaimStatus
  name string = 1
  resourceClaimName *string = 2

ContainerUser
  linux LinuxContainerUser = 1

ResourceStatus
  name string = 1
  resources []ResourceHealth = 2

NodeConfigSource
  configMap ConfigMapNodeConfigSource = 2

NodeConfigStatus
  assigned NodeConfigSource = 1
  active NodeConfigSource = 2
  lastKnownGood NodeConfigSource = 3
  error string = 4

NodeFeatures
  supplementalGroupsPolicy *bool = 1

NodeRuntimeHandlerFeatures
  recursiveReadOnlyMounts *bool = 1
  userNamespaces *bool = 2

PersistentVolumeClaimCondition
  type string = 1
  status string = 2
  lastProbeTime Time = 3
  lastTransitionTime Time = 4
  reason string = 5
  message string = 6

ModifyVolumeStatus
  targetVolumeAttributesClassName string = 1
  status string = 2

LinuxContainerUser
  uid int64 = 1
  gid int64 = 2
  supplementalGroups []int64 = 3

ResourceHealth
  resourceID string = 1
  health string = 2

ConfigMapNodeConfigSource
  namespace string = 1
  name string = 2
  uid string = 3
  resourceVersion string = 4
  kubeletConfigKey string = 5

kind CronJob
  spec CronJobSpec = 2
  status CronJobStatus = 3

kind ResourceQuota
  spec ResourceQuotaSpec = 2
  status ResourceQuotaStatus = 3

kind LimitRange
  spec LimitRangeSpec = 2

kind PodDisruptionBudget
  spec PodDisruptionBudgetSpec = 2
  status PodDisruptionBudgetStatus = 3

kind RuntimeClass
  handler string = 2
  overhead Overhead = 3
  scheduling Scheduling = 4

Overhead
  podFixed map[Quantity] = 1

Scheduling
  nodeSelector map[string] = 1
  tolerations []Toleration = 2

kind PriorityClass
  value int32 = 2
  globalDefault bool = 3
  description string = 4
  preemptionPolicy *enum(PreemptLowerPriority|Never) = 5

kind Ingress
  spec IngressSpec = 2
  status IngressStatus = 3

kind IngressClass
  spec IngressClassSpec = 2

kind NetworkPolicy
  spec NetworkPolicySpec = 2

kind HorizontalPodAutoscaler
  spec HorizontalPodAutoscalerSpec = 2
  status HorizontalPodAutoscalerStatus = 3

# autoscaling/v1: one CPU target (stored as autoscaling/v2, api/conversion.cc).
kind HorizontalPodAutoscaler@autoscaling.v1
  spec HorizontalPodAutoscalerSpec@autoscaling.v1 = 2
  status HorizontalPodAutoscalerStatus@autoscaling.v1 = 3

kind TokenRequest
  spec TokenRequestSpec = 2
  status TokenRequestStatus = 3

kind TokenReview
  spec TokenReviewSpec = 2
  status TokenReviewStatus = 3

kind SelfSubjectReview
  status SelfSubjectReviewStatus = 2

kind SelfSubjectAccessReview
  spec SelfSubjectAccessReviewSpec = 2
  status SubjectAccessReviewStatus = 3

kind SelfSubjectRulesReview
  spec SelfSubjectRulesReviewSpec = 2
  status SubjectRulesReviewStatus = 3

kind SubjectAccessReview
  spec SubjectAccessReviewSpec = 2
  status SubjectAccessReviewStatus = 3

kind LocalSubjectAccessReview
  spec SubjectAccessReviewSpec = 2
  status SubjectAccessReviewStatus = 3

kind CertificateSigningRequest
  spec CertificateSigningRequestSpec = 2
  status CertificateSigningRequestStatus = 3

kind ValidatingWebhookConfiguration
  webhooks []ValidatingWebhook = 2

kind MutatingWebhookConfiguration
  webhooks []MutatingWebhook = 2

kind Scale
  spec ScaleSpec = 2
  status ScaleStatus = 3

kind PodTemplate
  template PodTemplateSpec = 2

kind Binding
  target ObjectReference = 2

kind Eviction
  deleteOptions DeleteOptions = 2

DeleteOptions
  gracePeriodSeconds *int64 = 1
  preconditions Preconditions = 2
  orphanDependents *bool = 3
  propagationPolicy *string = 4
  dryRun []string = 5
  ignoreStoreReadErrorWithClusterBreakingPotential *bool = 6

CronJobSpec
  schedule string = 1
  timeZone *string = 8
  startingDeadlineSeconds *int64 = 2
  concurrencyPolicy enum(Allow|Forbid|Replace) = 3
  suspend *bool = 4
  jobTemplate JobTemplateSpec = 5
  successfulJobsHistoryLimit *int32 = 6
  failedJobsHistoryLimit *int32 = 7

CronJobStatus
  active []ObjectReference = 1
  lastScheduleTime Time = 4
  lastSuccessfulTime Time = 5

ResourceQuotaSpec
  hard map[Quantity] = 1
  scopes []string = 2
  scopeSelector ScopeSelector = 3

ResourceQuotaStatus
  hard map[Quantity] = 1
  used map[Quantity] = 2

LimitRangeSpec
  limits []LimitRangeItem = 1

PodDisruptionBudgetSpec
  minAvailable IntOrString = 1
  selector LabelSelector = 2
  maxUnavailable IntOrString = 3
  unhealthyPodEvictionPolicy *string = 4

PodDisruptionBudgetStatus
  observedGeneration int64 = 1
  disruptedPods map[Time] = 2
  disruptionsAllowed int32 = 3
  currentHealthy int32 = 4
  desiredHealthy int32 = 5
  expectedPods int32 = 6
  conditions []Condition = 7

IngressSpec
  ingressClassName *string = 4
  defaultBackend IngressBackend = 1
  tls []IngressTLS = 2
  rules []IngressRule = 3

IngressStatus
  loadBalancer IngressLoadBalancerStatus = 1

NetworkPolicySpec
  podSelector LabelSelector = 1
  ingress []NetworkPolicyIngressRule = 2
  egress []NetworkPolicyEgressRule = 3
  policyTypes []enum(Ingress|Egress) = 4

NetworkPolicyIngressRule
  ports []NetworkPolicyPort = 1
  from []NetworkPolicyPeer = 2

NetworkPolicyEgressRule
  ports []NetworkPolicyPort = 1
  to []NetworkPolicyPeer = 2

NetworkPolicyPeer
  podSelector LabelSelector = 1
  namespaceSelector LabelSelector = 2
  ipBlock IPBlock = 3

NetworkPolicyPort
  protocol *string = 1
  port IntOrString = 2
  endPort *int32 = 3

IPBlock
  cidr string = 1
  except []string = 2

IngressClassSpec
  controller string = 1
  parameters IngressClassParametersReference = 2

HorizontalPodAutoscalerSpec
  scaleTargetRef CrossVersionObjectReference = 1
  minReplicas *int32 = 2
  maxReplicas int32 = 3
  metrics []MetricSpec = 4
  behavior HorizontalPodAutoscalerBehavior = 5

HorizontalPodAutoscalerStatus
  observedGeneration *int64 = 1
  lastScaleTime Time = 2
  currentReplicas int32 = 3
  desiredReplicas int32 = 4
  currentMetrics []MetricStatus = 5
  conditions []HorizontalPodAutoscalerCondition = 6

HorizontalPodAutoscalerSpec@autoscaling.v1
  scaleTargetRef CrossVersionObjectReference = 1
  minReplicas *int32 = 2
  maxReplicas int32 = 3
  targetCPUUtilizationPercentage *int32 = 4

HorizontalPodAutoscalerStatus@autoscaling.v1
  observedGeneration *int64 = 1
  lastScaleTime Time = 2
  currentReplicas int32 = 3
  desiredReplicas int32 = 4
  currentCPUUtilizationPercentage *int32 = 5

TokenRequestSpec
  audiences []string = 1
  expirationSeconds *int64 = 4
  boundObjectRef BoundObjectReference = 3

TokenRequestStatus
  token string = 1
  expirationTimestamp Time = 2

TokenReviewSpec
  token string = 1
  audiences []string = 2

TokenReviewStatus
  authenticated bool = 1
  user UserInfo = 2
  audiences []string = 4
  error string = 3

SelfSubjectReviewStatus
  userInfo UserInfo = 1

SelfSubjectAccessReviewSpec
  resourceAttributes ResourceAttributes = 1
  nonResourceAttributes NonResourceAttributes = 2

SubjectAccessReviewStatus
  allowed bool = 1
  denied bool = 4
  reason string = 2
  evaluationError string = 3

SelfSubjectRulesReviewSpec
  namespace string = 1

SubjectRulesReviewStatus
  resourceRules []ResourceRule = 1
  nonResourceRules []NonResourceRule = 2
  incomplete bool = 3
  evaluationError string = 4

SubjectAccessReviewSpec
  resourceAttributes ResourceAttributes = 1
  nonResourceAttributes NonResourceAttributes = 2
  user string = 3
  groups []string = 4
  extra map[[]string] = 5
  uid string = 6

CertificateSigningRequestSpec
  request *bytes = 1
  signerName string = 7
  expirationSeconds *int32 = 8
  usages []string = 5
  username string = 2
  uid string = 3
  groups []string = 4
  extra map[[]string] = 6

CertificateSigningRequestStatus
  conditions []CertificateSigningRequestCondition = 1
  certificate *bytes = 2

ValidatingWebhook
  name string = 1
  clientConfig WebhookClientConfig = 2
  rules []RuleWithOperations = 3
  failurePolicy *enum(Ignore|Fail) = 4
  matchPolicy *enum(Exact|Equivalent) = 9
  namespaceSelector LabelSelector = 5
  objectSelector LabelSelector = 10
  sideEffects *enum(Unknown|None|Some|NoneOnDryRun) = 6
  timeoutSeconds *int32 = 7
  admissionReviewVersions []string = 8
  matchConditions []MatchCondition = 11

MutatingWebhook
  name string = 1
  clientConfig WebhookClientConfig = 2
  rules []RuleWithOperations = 3
  failurePolicy *enum(Ignore|Fail) = 4
  matchPolicy *enum(Exact|Equivalent) = 9
  namespaceSelector LabelSelector = 5
  objectSelector LabelSelector = 11
  sideEffects *enum(Unknown|None|Some|NoneOnDryRun) = 6
  timeoutSeconds *int32 = 7
  admissionReviewVersions []string = 8
  reinvocationPolicy *enum(Never|IfNeeded) = 10
  matchConditions []MatchCondition = 12

ScaleSpec
  replicas int32 = 1

ScaleStatus
  replicas int32 = 1
  selector string = 2

Preconditions
  uid *string = 1
  resourceVersion *string = 2

JobTemplateSpec
  metadata ObjectMeta = 1
  spec JobSpec = 2

ScopeSelector
  matchExpressions []ScopedResourceSelectorRequirement = 1

LimitRangeItem
  type enum(Pod|Container|PersistentVolumeClaim) = 1
  max map[Quantity] = 2
  min map[Quantity] = 3
  default map[Quantity] = 4
  defaultRequest map[Quantity] = 5
  maxLimitRequestRatio map[Quantity] = 6

IngressBackend
  service IngressServiceBackend = 4
  resource TypedLocalObjectReference = 3

IngressTLS
  hosts []string = 1
  secretName string = 2

IngressRule
  host string = 1
  inline IngressRuleValue = 2

IngressLoadBalancerStatus
  ingress []IngressLoadBalancerIngress = 1

IngressClassParametersReference
  aPIGroup *string = 1
  kind string = 2
  name string = 3
  scope *string = 4
  namespace *string = 5

CrossVersionObjectReference
  kind string = 1
  name string = 2
  apiVersion string = 3

MetricSpec
  type enum(Object|Pods|Resource|ContainerResource|External) = 1
  object ObjectMetricSource = 2
  pods PodsMetricSource = 3
  resource ResourceMetricSource = 4
  containerResource ContainerResourceMetricSource = 7
  external ExternalMetricSource = 5

HorizontalPodAutoscalerBehavior
  scaleUp HPAScalingRules = 1
  scaleDown HPAScalingRules = 2

MetricStatus
  type string = 1
  object ObjectMetricStatus = 2
  pods PodsMetricStatus = 3
  resource ResourceMetricStatus = 4
  containerResource ContainerResourceMetricStatus = 7
  external ExternalMetricStatus = 5

HorizontalPodAutoscalerCondition
  type string = 1
  status string = 2
  lastTransitionTime Time = 3
  reason string = 4
  message string = 5

BoundObjectReference
  kind string = 1
  apiVersion string = 2
  name string = 3
  uID string = 4

UserInfo
  username string = 1
  uid string = 2
  groups []string = 3
  extra map[[]string] = 4

ResourceAttributes
  namespace string = 1
  verb string = 2
  group string = 3
  version string = 4
  resource string = 5
  subresource string = 6
  name string = 7
  fieldSelector FieldSelectorAttributes = 8
  labelSelector LabelSelectorAttributes = 9

NonResourceAttributes
  path string = 1
  verb string = 2

ResourceRule
  verbs []string = 1
  apiGroups []string = 2
  resources []string = 3
  resourceNames []string = 4

NonResourceRule
  verbs []string = 1
  nonResourceURLs []string = 2


CertificateSigningRequestCondition
  type string = 1
  status string = 6
  reason string = 2
  message string = 3
  lastUpdateTime Time = 4
  lastTransitionTime Time = 5

WebhookClientConfig
  url *string = 3
  service ServiceReference = 1
  caBundle *bytes = 2

RuleWithOperations
  operations []string = 1
  inline Rule = 2

MatchCondition
  name string = 1
  expression string = 2

ScopedResourceSelectorRequirement
  scopeName string = 1
  operator string = 2
  values []string = 3

IngressServiceBackend
  name string = 1
  port ServiceBackendPort = 2

IngressRuleValue
  http HTTPIngressRuleValue = 1

IngressLoadBalancerIngress
  ip string = 1
  hostname string = 2
  ports []IngressPortStatus = 4

ObjectMetricSource
  describedObject CrossVersionObjectReference = 1
  target MetricTarget = 2
  metric MetricIdentifier = 3

PodsMetricSource
  metric MetricIdentifier = 1
  target MetricTarget = 2

ResourceMetricSource
  name string = 1
  target MetricTarget = 2

ContainerResourceMetricSource
  name string = 1
  target MetricTarget = 2
  container string = 3

ExternalMetricSource
  metric MetricIdentifier = 1
  target MetricTarget = 2

HPAScalingRules
  stabilizationWindowSeconds *int32 = 3
  selectPolicy *enum(Max|Min|Disabled) = 1
  policies []HPAScalingPolicy = 2

ObjectMetricStatus
  metric MetricIdentifier = 1
  current MetricValueStatus = 2
  describedObject CrossVersionObjectReference = 3

PodsMetricStatus
  metric MetricIdentifier = 1
  current MetricValueStatus = 2

ResourceMetricStatus
  name string = 1
  current MetricValueStatus = 2

ContainerResourceMetricStatus
  name string = 1
  current MetricValueStatus = 2
  container string = 3

ExternalMetricStatus
  metric MetricIdentifier = 1
  current MetricValueStatus = 2

FieldSelectorAttributes
  rawSelector string = 1
  requirements []FieldSelectorRequirement = 2

LabelSelectorAttributes
  rawSelector string = 1
  requirements []LabelSelectorRequirement = 2

ServiceReference
  namespace string = 1
  name string = 2
  path *string = 3
  port *int32 = 4

Rule
  apiGroups []string = 1
  apiVersions []string = 2
  resources []string = 3
  scope *enum(*|Cluster|Namespaced) = 4

ServiceBackendPort
  name string = 1
  number int32 = 2

HTTPIngressRuleValue
  paths []HTTPIngressPath = 1

IngressPortStatus
  port int32 = 1
  protocol string = 2
  error *string = 3

MetricTarget
  type enum(Utilization|Value|AverageValue) = 1
  value Quantity = 2
  averageValue Quantity = 3
  averageUtilization *int32 = 4

MetricIdentifier
  name string = 1
  selector LabelSelector = 2

HPAScalingPolicy
  type enum(Pods|Percent) = 1
  value int32 = 2
  periodSeconds int32 = 3

MetricValueStatus
  value Quantity = 1
  averageValue Quantity = 2
  averageUtilization *int32 = 3

FieldSelectorRequirement
  key string = 1
  operator string = 2
  values []string = 3

HTTPIngressPath
  path string = 1
  pathType *enum(Exact|Prefix|ImplementationSpecific) = 3
  backend IngressBackend = 2
)";
}

}  // namespace kiso::api
