<#
.SYNOPSIS
  Installs (or upgrades) the sqlharbor agent as a Windows service running as the virtual
  account NT SERVICE\sqlharbor-agent, offline from the wheels shipped beside this script.

.DESCRIPTION
  `make agent-bundle` writes dist/sqlharbor-agent-<version>-windows-amd64.zip; unpack it on
  the VM and run this script from the unpacked folder.  It makes a venv under $InstallDir
  with an installed CPython 3.11-3.14 and installs `sqlharbor[sqlserver]` into it from the
  `wheels` folder with `pip --no-index` (no network needed; -FromPyPI installs from PyPI
  instead).  Python console scripts cannot answer the Service Control Manager themselves,
  so the agent runs under WinSW (https://github.com/winsw/winsw, MIT), a small service
  wrapper: download WinSW-x64.exe yourself and pass its path.

  First install: registers the service, lets the virtual account read the configuration
  folder and write the state folder (the agent rewrites its kubeconfig when it renews its
  token), grants it sysadmin on every instance through `sqlharbor-agent grant-permissions
  --apply`, and starts it.  When the service exists already: stops it, upgrades the venv
  from the new wheels and starts it again (configuration and grants are left as they are).

.EXAMPLE
  .\install-service.ps1 -WinSW C:\Downloads\WinSW-x64.exe -Instances 'localhost','VM1\SQL2019'
#>
param(
  [Parameter(Mandatory = $true)] [string] $WinSW,
  [string]   $Wheels = (Join-Path $PSScriptRoot 'wheels'),
  [string]   $InstallDir = 'C:\Program Files\sqlharbor',
  [string]   $ConfigPath = 'C:\ProgramData\sqlharbor\agent.yaml',
  [string]   $StateDir = 'C:\ProgramData\sqlharbor\state',
  [string[]] $Instances = @('localhost'),
  [string]   $Python = 'py',
  [string]   $PythonVersion = '3.12',
  [switch]   $FromPyPI
)
$ErrorActionPreference = 'Stop'
$serviceName = 'sqlharbor-agent'
$account = "NT SERVICE\$serviceName"
$kubeconfig = Join-Path $StateDir 'kubeconfig'

function Invoke-Checked([string] $What, [scriptblock] $Command) {
  & $Command
  if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE)" }
}

$existing = Get-Service $serviceName -ErrorAction SilentlyContinue
if ($existing -and $existing.Status -ne 'Stopped') { Stop-Service $serviceName }

New-Item -ItemType Directory -Force -Path $InstallDir, (Split-Path $ConfigPath), $StateDir | Out-Null
$venvPython = "$InstallDir\venv\Scripts\python.exe"
if (-not (Test-Path $venvPython)) {
  if ($Python -eq 'py') {
    Invoke-Checked 'python -m venv' { & py "-$PythonVersion" -m venv "$InstallDir\venv" }
  } else {
    Invoke-Checked 'python -m venv' { & $Python -m venv "$InstallDir\venv" }
  }
}
$pip = @('-m', 'pip', 'install', '--upgrade', '--disable-pip-version-check')
if ($FromPyPI) {
  Invoke-Checked 'pip install (PyPI)' { & $venvPython @pip 'sqlharbor[sqlserver]' }
} else {
  if (-not (Test-Path (Join-Path $Wheels 'sqlharbor-*.whl'))) {
    throw "no sqlharbor wheel in ${Wheels}: unpack sqlharbor-agent-<version>-windows-amd64.zip and run this script from it (or pass -FromPyPI)"
  }
  Invoke-Checked 'pip install (offline)' {
    & $venvPython @pip --no-index --find-links $Wheels 'sqlharbor[sqlserver]'
  }
}
$agent = "$InstallDir\venv\Scripts\sqlharbor-agent.exe"
Invoke-Checked 'sqlharbor-agent --version' { & $agent --version }

if ($existing) {
  Start-Service $serviceName
  Get-Service $serviceName
  return
}

Copy-Item $WinSW "$InstallDir\$serviceName.exe" -Force
@"
<service>
  <id>$serviceName</id>
  <name>sqlharbor agent</name>
  <description>SQL Server backups to Azure Blob through VDI (sqlharbor).</description>
  <executable>$agent</executable>
  <arguments>run --config "$ConfigPath"</arguments>
  <env name="KUBECONFIG" value="$kubeconfig" />
  <serviceaccount><username>$account</username></serviceaccount>
  <startmode>Automatic</startmode>
  <delayedAutoStart>true</delayedAutoStart>
  <depend>MSSQLSERVER</depend>
  <onfailure action="restart" delay="10 sec" />
  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>
</service>
"@ | Set-Content -Encoding UTF8 "$InstallDir\$serviceName.xml"

Invoke-Checked 'WinSW install' { & "$InstallDir\$serviceName.exe" install }
# Named instances only: drop the MSSQLSERVER dependency if there is no default instance.
if (-not (Get-Service MSSQLSERVER -ErrorAction SilentlyContinue)) {
  sc.exe config $serviceName depend= '/' | Out-Null
}

# The virtual account reads its configuration and owns its state (the kubeconfig holds a
# token: only SYSTEM, Administrators and the agent may open the state folder).
Invoke-Checked 'icacls (config)' { icacls (Split-Path $ConfigPath) /grant "${account}:(OI)(CI)R" }
Invoke-Checked 'icacls (state)' {
  icacls $StateDir /inheritance:r /grant:r 'SYSTEM:(OI)(CI)F' 'Administrators:(OI)(CI)F' "${account}:(OI)(CI)M"
}

$grantArgs = @('grant-permissions', '--windows', '--apply', '--service-account', $account)
foreach ($i in $Instances) { $grantArgs += @('--instance', $i) }
Invoke-Checked 'sqlharbor-agent grant-permissions' { & $agent @grantArgs }

Start-Service $serviceName
Get-Service $serviceName
