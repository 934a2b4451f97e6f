using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using NbdFast.Cli.Exports;
using NbdFast.Cli.Listening;

namespace NbdFast.Cli;

/// <summary>Turns a successful parse into validated settings; every mistake is one <see cref="UsageException"/> line.</summary>
internal sealed partial class CommandLine
{
    public CliSettings Bind(ParseResult result, LogLevel logLevel)
    {
        (IReadOnlyList<ExportSpec> exports, string? config) = BindExports(result);
        (TlsSetting tls, string? certificates, string? psk, bool verifyPeer, string[] allowClients) = BindTls(result);
        return new CliSettings
        {
            Exports = exports,
            ConfigPath = config,
            Listen = BindListeners(result),
            Limits = BindLimits(result),
            NoList = result.GetValue(_noList),
            LogLevel = logLevel,
            Io = result.GetValue(_io) switch
            {
                "auto" => IoMode.Auto,
                "uring" => IoMode.Uring,
                "sockets" => IoMode.Sockets,
                var other => throw new UsageException($"--io: '{other}' is not one of auto, uring, sockets"),
            },
            Threads = result.GetValue(_threads) is int threads and >= 1 and <= 256
                ? threads
                : throw new UsageException($"--threads: {result.GetValue(_threads)} is not between 1 and 256"),
            Tls = tls,
            TlsCertificates = certificates,
            TlsPsk = psk,
            TlsVerifyPeer = verifyPeer,
            TlsAllowClients = allowClients,
            Metrics = result.GetValue(_metrics),
            PidFile = result.GetValue(_pidFile),
            ShutdownTimeout = Seconds(result.GetValue(_shutdownTimeout), "--shutdown-timeout", zeroIsInfinite: false),
        };
    }

    private (IReadOnlyList<ExportSpec> Exports, string? Config) BindExports(ParseResult result)
    {
        string? file = result.GetValue(_file);
        string? memory = result.GetValue(_memory);
        string[] extra = result.GetValue(_export) ?? [];
        string? config = result.GetValue(_config);
        if (file is not null && file.StartsWith('-') && file.Length > 1)
        {
            throw new UsageException($"unknown option '{file}'");
        }
        if (file is not null && memory is not null)
        {
            throw new UsageException("give either a FILE or --memory SIZE, not both");
        }
        bool hasDefault = file is not null || memory is not null;
        if (config is not null)
        {
            if (hasDefault || extra.Length > 0)
            {
                throw new UsageException("--config cannot be combined with FILE, --memory or --export (put every export in the file)");
            }
            return (ConfigFile.Load(config), config);
        }
        if (!hasDefault && extra.Length == 0)
        {
            throw new UsageException("give a FILE to serve, --memory SIZE, --export or --config");
        }
        var specs = new List<ExportSpec>();
        if (hasDefault)
        {
            specs.Add(BindDefaultExport(result, file, memory));
        }
        else
        {
            RejectDefaultExportOptions(result);
        }
        specs.AddRange(extra.Select(ExportSpecParser.Parse));
        ExportSet.CheckUniqueNames(specs);
        return (specs, null);
    }

    private ExportSpec BindDefaultExport(ParseResult result, string? file, string? memory)
    {
        long? memorySize = null;
        if (memory is not null)
        {
            memorySize = SizeParser.TryParse(memory, out long size) && size > 0
                ? size
                : throw new UsageException($"--memory: '{memory}' is not a size (examples: 512M, 1G)");
        }
        bool writable = result.GetValue(_writable);
        if (writable && result.GetValue(_readOnly))
        {
            throw new UsageException("--writable and --read-only contradict each other");
        }
        if (result.GetValue(_direct) && file is null)
        {
            throw new UsageException("--direct applies to a FILE, not to --memory");
        }
        var spec = new ExportSpec
        {
            Name = result.GetValue(_exportName) ?? string.Empty,
            Path = file,
            MemorySize = memorySize,
            Writable = writable,
            Direct = result.GetValue(_direct),
            Description = result.GetValue(_description),
            Snapshot = result.GetValue(_snapshot),
            Offset = OptionalSize(result, _offset) ?? 0,
            Size = OptionalSize(result, _size),
        };
        return ExportSpecValidator.Validate(spec, "--export-name");
    }

    private void RejectDefaultExportOptions(ParseResult result)
    {
        foreach (Option option in (Option[])[_writable, _readOnly, _direct, _snapshot, _offset, _size, _description, _exportName])
        {
            if (result.GetResult(option) is { Implicit: false })
            {
                throw new UsageException($"{option.Name} applies to FILE or --memory; give --export NAME=PATH,... options instead");
            }
        }
    }

    private ListenerSettings BindListeners(ParseResult result)
    {
        int port = result.GetValue(_port);
        if (port is < 0 or > 65535)
        {
            throw new UsageException($"--port: {port} is not a TCP port");
        }
        string[] bind = result.GetValue(_bind) ?? [];
        foreach (string address in bind)
        {
            if (!ListenerSet.TryParseAddress(address, out _))
            {
                throw new UsageException($"--bind: '{address}' is not an IP address");
            }
        }
        string[] unix = result.GetValue(_unix) ?? [];
        foreach (string path in unix)
        {
            if (Encoding.UTF8.GetByteCount(path) > 107)
            {
                throw new UsageException("--unix: the path is longer than the 107 bytes a unix socket address holds");
            }
        }
        if (SocketActivation.IsActive && (bind.Length > 0 || unix.Length > 0 || result.GetResult(_port) is { Implicit: false }))
        {
            throw new UsageException("socket activation (LISTEN_FDS) cannot be combined with --bind, --unix or --port");
        }
        UnixFileMode? mode = null;
        if (result.GetValue(_unixMode) is string modeText)
        {
            mode = TryParseOctal(modeText, out int bits) && bits <= 0x1FF
                ? (UnixFileMode)bits
                : throw new UsageException($"--unix-mode: '{modeText}' is not an octal mode such as 660");
        }
        string? owner = result.GetValue(_unixOwner);
        if (owner is not null)
        {
            _ = UnixListener.ResolveOwner(owner); // a typo is a start-up error, not a failed bind later
        }
        if ((mode is not null || owner is not null) && unix.Length == 0 && !SocketActivation.IsActive)
        {
            throw new UsageException("--unix-mode and --unix-owner need --unix PATH");
        }
        return new ListenerSettings
        {
            Port = port,
            BindAddresses = bind,
            UnixSockets = unix,
            UnixMode = mode,
            UnixOwner = owner,
            Allow = [.. (result.GetValue(_allow) ?? []).Select(Cidr.Parse)],
        };
    }

    private Limits BindLimits(ParseResult result)
    {
        long inFlightBytes = OptionalSize(result, _maxInFlightBytes) ?? 64L * 1024 * 1024;
        if (inFlightBytes < 1024 * 1024)
        {
            throw new UsageException("--max-in-flight-bytes: at least 1M (a request's payload must fit)");
        }
        return new Limits
        {
            MaxConnections = Positive(result.GetValue(_maxConnections), "--max-connections"),
            MaxHandshakes = Positive(result.GetValue(_maxHandshakes), "--max-handshakes"),
            HandshakeTimeout = Seconds(result.GetValue(_handshakeTimeout), "--handshake-timeout", zeroIsInfinite: true),
            IdleTimeout = Seconds(result.GetValue(_idleTimeout), "--idle-timeout", zeroIsInfinite: true),
            MaxInFlightRequests = Positive(result.GetValue(_maxInFlight), "--max-in-flight"),
            MaxInFlightBytes = inFlightBytes,
        };
    }

    private (TlsSetting Tls, string? Certificates, string? Psk, bool VerifyPeer, string[] AllowClients) BindTls(ParseResult result)
    {
        string? certificates = result.GetValue(_tlsCertificates);
        string? psk = result.GetValue(_tlsPsk);
        if (certificates is not null && psk is not null)
        {
            throw new UsageException("--tls-certificates and --tls-psk cannot be combined");
        }
        TlsSetting tls = result.GetValue(_tls) switch
        {
            null => certificates is null && psk is null ? TlsSetting.Off : TlsSetting.Require,
            "off" => TlsSetting.Off,
            "on" => TlsSetting.On,
            "require" => TlsSetting.Require,
            var other => throw new UsageException($"--tls: '{other}' is not one of off, on, require"),
        };
        if (tls != TlsSetting.Off && certificates is null && psk is null)
        {
            throw new UsageException("--tls needs --tls-certificates DIR or --tls-psk FILE");
        }
        bool verifyPeer = result.GetValue(_tlsVerifyPeer);
        string[] allowClients = result.GetValue(_tlsAllowClient) ?? [];
        if ((verifyPeer || allowClients.Length > 0) && tls == TlsSetting.Off)
        {
            throw new UsageException("--tls-verify-peer and --tls-allow-client need TLS (--tls-certificates DIR)");
        }
        if (verifyPeer && psk is not null)
        {
            throw new UsageException("--tls-verify-peer needs --tls-certificates DIR, not --tls-psk");
        }
        if (allowClients.Length > 0 && !verifyPeer)
        {
            throw new UsageException("--tls-allow-client needs --tls-verify-peer");
        }
        return tls == TlsSetting.Off ? (tls, null, null, false, []) : (tls, certificates, psk, verifyPeer, allowClients);
    }

    private static long? OptionalSize(ParseResult result, Option<string?> option)
    {
        string? text = result.GetValue(option);
        if (text is null)
        {
            return null;
        }
        return SizeParser.TryParse(text, out long bytes) ? bytes : throw new UsageException($"{option.Name}: '{text}' is not a size");
    }

    private static int Positive(int value, string name) =>
        value > 0 ? value : throw new UsageException($"{name}: {value} is not a positive number");

    private static TimeSpan Seconds(double value, string name, bool zeroIsInfinite)
    {
        // Timers take at most int.MaxValue milliseconds (about 24.8 days).
        if (double.IsNaN(value) || value < 0 || value * 1000 > int.MaxValue)
        {
            throw new UsageException($"{name}: {value.ToString(CultureInfo.InvariantCulture)} is not a number of seconds");
        }
        return value == 0 && zeroIsInfinite ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(value);
    }

    private static bool TryParseOctal(string text, out int value)
    {
        value = 0;
        if (text.Length is 0 or > 4)
        {
            return false;
        }
        foreach (char c in text)
        {
            if (c is < '0' or > '7')
            {
                return false;
            }
            value = value * 8 + (c - '0');
        }
        return true;
    }
}
