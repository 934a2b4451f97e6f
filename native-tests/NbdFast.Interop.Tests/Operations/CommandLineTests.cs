using System.Text.RegularExpressions;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--version, the --help manual page, and one-line usage errors for the storage-node options.</summary>
public sealed partial class CommandLineTests
{
    [Fact(Timeout = 30_000)]
    public async Task Version_PrintsNameAndSemanticVersion_ExitZero()
    {
        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--version"], TimeSpan.FromSeconds(10));

        Assert.True(run.Succeeded, run.Describe());
        Assert.Matches(VersionLine(), run.Stdout);
        Assert.Equal("", run.Stderr);
    }

    [Fact(Timeout = 30_000)]
    public async Task Help_IsAManualPage_ListingEveryOptionTheParserKnows()
    {
        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, ["--help"], TimeSpan.FromSeconds(10));

        Assert.True(run.Succeeded, run.Describe());
        string help = run.Stdout;
        string[] lines = help.Split('\n');
        foreach (string section in new[] { "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIG FILE (--config)", "SIGNALS", "EXIT STATUS", "EXAMPLES" })
        {
            Assert.True(lines.Any(l => l.StartsWith(section, StringComparison.Ordinal)), $"no {section} section in --help:\n{help}");
        }
        // Every long option declared in the parser's source, and the ones the storage-node issue asks for.
        string[] declared = DeclaredLongOptions();
        Assert.True(declared.Length >= 30, $"found only {declared.Length} options in CommandLine.cs: the pattern is out of date");
        string[] required =
        [
            "--export", "--config", "--no-list", "--bind", "--unix", "--unix-mode", "--unix-owner", "--allow", "--pidfile",
            "--max-connections", "--max-handshakes", "--handshake-timeout", "--idle-timeout", "--shutdown-timeout",
            "--snapshot", "--offset", "--size", "--metrics", "--verbose", "--quiet", "--version", "--help",
        ];
        foreach (string option in declared.Concat(required))
        {
            Assert.True(Regex.IsMatch(help, $@"(^|[\s,]){Regex.Escape(option)}([\s,=]|$)", RegexOptions.Multiline), $"--help does not mention {option}");
        }
        Assert.Matches(@"nbdfast \d+\.\d+\.\d+", help);
    }

    /// <summary>Each case: the arguments (TEMP stands for a temp directory) and a piece of the one line expected.</summary>
    public static TheoryData<string, string[], string> Mistakes => new()
    {
        { "export without =", ["--export", "disk"], "NAME=PATH" },
        { "export without path", ["--export", "a="], "no PATH" },
        { "export unknown option", ["--export", "a=memory:1M,fast"], "unknown option 'fast'" },
        { "export option with a value it does not take", ["--export", "a=memory:1M,ro=1"], "unknown option" },
        { "export bad memory size", ["--export", "a=memory:12Q"], "not a size" },
        { "export zero memory", ["--export", "a=memory:0"], "not a size" },
        { "export zero max-connections", ["--export", "a=memory:1M,max-connections=0"], "max-connections" },
        { "export negative max-connections", ["--export", "a=memory:1M,max-connections=-1"], "max-connections" },
        { "export missing file", ["--export", "a=TEMP/missing.img"], "no such file" },
        { "export directory", ["--export", "a=TEMP"], "is a directory" },
        { "export direct on memory", ["--export", "a=memory:1M,direct"], "direct" },
        { "duplicate export names", ["--export", "a=memory:1M", "--export", "a=memory:2M"], "defined twice" },
        { "default export defined twice", ["--memory", "1M", "--export", "=memory:1M"], "defined twice" },
        { "default-export option without FILE", ["--export", "a=memory:1M", "--writable"], "--writable" },
        { "allow not an address", ["--memory", "1M", "--allow", "example.com"], "--allow" },
        { "allow IPv4 prefix too long", ["--memory", "1M", "--allow", "10.0.0.0/33"], "--allow" },
        { "allow IPv6 prefix too long", ["--memory", "1M", "--allow", "::1/129"], "--allow" },
        { "allow prefix not a number", ["--memory", "1M", "--allow", "10.0.0.0/x"], "--allow" },
        { "allow empty", ["--memory", "1M", "--allow", ""], "--allow" },
        { "unix mode not octal", ["--memory", "1M", "-U", "TEMP/s.sock", "--unix-mode", "999"], "--unix-mode" },
        { "unix mode symbolic", ["--memory", "1M", "-U", "TEMP/s.sock", "--unix-mode", "rw-rw----"], "--unix-mode" },
        { "unix mode too large", ["--memory", "1M", "-U", "TEMP/s.sock", "--unix-mode", "17777"], "--unix-mode" },
        { "unix mode without unix", ["--memory", "1M", "--unix-mode", "600"], "--unix" },
        { "unix owner unknown user", ["--memory", "1M", "-U", "TEMP/s.sock", "--unix-owner", "no-such-user-xyz"], "no-such-user-xyz" },
        { "unix owner unknown group", ["--memory", "1M", "-U", "TEMP/s.sock", "--unix-owner", ":no-such-group-xyz"], "no-such-group-xyz" },
        { "config with FILE", ["--config", "TEMP/exports.json", "TEMP/disk.img"], "--config" },
        { "config with export", ["--config", "TEMP/exports.json", "--export", "a=memory:1M"], "--config" },
        { "config with memory", ["--config", "TEMP/exports.json", "--memory", "1M"], "--config" },
        { "missing config file", ["--config", "TEMP/missing.json"], "missing.json" },
        { "zero max-connections", ["--memory", "1M", "--max-connections", "0"], "--max-connections" },
        { "zero max-handshakes", ["--memory", "1M", "--max-handshakes", "0"], "--max-handshakes" },
        { "handshake timeout not a number", ["--memory", "1M", "--handshake-timeout", "soon"], "soon" },
    };

    [Theory(Timeout = 30_000)]
    [MemberData(nameof(Mistakes))]
    public async Task UsageError_ExitsTwoWithOneLine(string mistake, string[] arguments, string explanation)
    {
        using var temp = new TempDirectory();
        File.WriteAllBytes(temp.File("disk.img"), new byte[4096]);
        File.WriteAllText(temp.File("exports.json"), """{ "exports": [ { "name": "a", "memory": "1M" } ] }""");
        string[] resolved = [.. arguments.Select(a => a.Replace("TEMP", temp.Path, StringComparison.Ordinal)), "-b", "127.0.0.1", "-p", "0"];

        ToolResult run = await ExternalTool.RunAsync(NbdfastBinary.Path, resolved, TimeSpan.FromSeconds(10));

        CliTests.AssertUsageError(run);
        Assert.True(run.Stderr.Contains(explanation, StringComparison.Ordinal), $"{mistake}: the message does not mention '{explanation}'\n{run.Describe()}");
    }

    /// <summary>The long option names declared in src/NbdFast.Cli/CommandLine.cs (<c>new("--name", ...)</c>).</summary>
    private static string[] DeclaredLongOptions()
    {
        string? root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "NbdFast.sln")))
        {
            root = Path.GetDirectoryName(root);
        }
        Assert.NotNull(root);
        string source = File.ReadAllText(Path.Combine(root, "src", "NbdFast.Cli", "CommandLine.cs"));
        return [.. DeclaredOption().Matches(source).Select(m => m.Groups[1].Value).Distinct()];
    }

    [GeneratedRegex(@"^nbdfast \d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?\n$")]
    private static partial Regex VersionLine();

    [GeneratedRegex(@"new\(""(--[a-z][a-z-]*)""")]
    private static partial Regex DeclaredOption();
}
