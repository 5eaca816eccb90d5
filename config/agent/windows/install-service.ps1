<#
.SYNOPSIS
  Installs the sqlharbor agent as a Windows service (virtual account NT SERVICE\sqlharbor-agent).

.DESCRIPTION
  Python console scripts cannot answer the Service Control Manager themselves, so the
  agent runs under WinSW (https://github.com/winsw/winsw, MIT), a small service wrapper.
  Download WinSW-x64.exe yourself and pass its path; this script copies it next to an
  XML definition, registers the service, and grants the virtual account sysadmin on
  every instance through `sqlharbor-agent grant-permissions --apply`.

.EXAMPLE
  .\install-service.ps1 -WinSW C:\Downloads\WinSW-x64.exe -Instances 'localhost','VM1\SQL2019'
#>
param(
  [Parameter(Mandatory = $true)] [string] $WinSW,
  [string]   $InstallDir = 'C:\Program Files\sqlharbor',
  [string]   $ConfigPath = 'C:\ProgramData\sqlharbor\agent.yaml',
  [string]   $Kubeconfig = 'C:\ProgramData\sqlharbor\kubeconfig',
  [string[]] $Instances = @('localhost'),
  [string]   $Python = 'py'
)
$ErrorActionPreference = 'Stop'
$serviceName = 'sqlharbor-agent'

New-Item -ItemType Directory -Force -Path $InstallDir, (Split-Path $ConfigPath) | Out-Null
& $Python -3.11 -m venv "$InstallDir\venv"
& "$InstallDir\venv\Scripts\python.exe" -m pip install --upgrade 'sqlharbor[sqlserver]'
$agent = "$InstallDir\venv\Scripts\sqlharbor-agent.exe"

Copy-Item $WinSW "$InstallDir\$serviceName.exe" -Force
@"
<service>
  <id>$serviceName</id>
  <name>sqlharbor agent</name>
  <description>SQL Server backups to Azure Blob through VDI (sqlharbor).</description>
  <executable>$agent</executable>
  <arguments>run --config "$ConfigPath"</arguments>
  <env name="KUBECONFIG" value="$Kubeconfig" />
  <serviceaccount><username>NT SERVICE\$serviceName</username></serviceaccount>
  <startmode>Automatic</startmode>
  <delayedAutoStart>true</delayedAutoStart>
  <depend>MSSQLSERVER</depend>
  <onfailure action="restart" delay="10 sec" />
  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>
</service>
"@ | Set-Content -Encoding UTF8 "$InstallDir\$serviceName.xml"

& "$InstallDir\$serviceName.exe" install
# Named instances only: drop the MSSQLSERVER dependency if there is no default instance.
if (-not (Get-Service MSSQLSERVER -ErrorAction SilentlyContinue)) {
  sc.exe config $serviceName depend= '/' | Out-Null
}

# The virtual account needs read access to its config and kubeconfig.
icacls (Split-Path $ConfigPath) /grant "NT SERVICE\${serviceName}:(OI)(CI)R" | Out-Null

$grantArgs = @('grant-permissions', '--windows', '--apply', '--service-account', "NT SERVICE\$serviceName")
foreach ($i in $Instances) { $grantArgs += @('--instance', $i) }
& $agent @grantArgs

Start-Service $serviceName
Get-Service $serviceName
