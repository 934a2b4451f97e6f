using System.Diagnostics;

namespace NbdFast.Interop.Tests.Support;

/// <summary>The environment every external process gets: Debian's /usr/bin first (python3-libnbd lives there).</summary>
public static class ToolEnvironment
{
    public const string Python = "/usr/bin/python3";

    public static string SearchPath { get; } = "/usr/bin:" + (Environment.GetEnvironmentVariable("PATH") ?? "/bin");

    public static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["PATH"] = SearchPath;
        info.Environment["LC_ALL"] = "C";
        info.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        return info;
    }
}
